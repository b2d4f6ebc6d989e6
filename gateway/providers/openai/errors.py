"""OpenAI failures into the gateway's error hierarchy: SDK exceptions, error bodies and events."""

from __future__ import annotations

from typing import Any

import openai

from gateway import upstream
from gateway.errors import UpstreamError
from gateway.providers._errors import connection_error, error_for_status
from gateway.providers._sdk import redact, stream_error

NAME = "openai"


def translate(exc: Exception, secret: str | None) -> Exception:
    """The gateway error for an SDK or transport failure (others pass through)."""
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(
            NAME, exc.status_code, redact(_status_message(exc), secret), exc.response.headers
        )
    if isinstance(exc, openai.APIConnectionError):
        # The SDK's own message is bland; the transport error behind it says what failed.
        return connection_error(
            NAME,
            exc,
            timed_out=isinstance(exc, openai.APITimeoutError),
        )
    if isinstance(exc, upstream.TransportError):
        return connection_error(NAME, exc)
    return exc


def error_event(error: Any, secret: str | None) -> UpstreamError:
    """An ``{"error": {...}}`` object inside a 200 answer (mid-stream or whole)."""
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code")
        message = str(error.get("message") or kind or "unknown error")
    else:
        kind, message = None, str(error)
    return stream_error(NAME, kind if isinstance(kind, str) else None, redact(message, secret))


def _status_message(exc: openai.APIStatusError) -> str:
    # The SDK stores the JSON body's ``error`` object (or the raw text) as ``body``.
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    elif isinstance(body, str) and body:
        return body[:200]
    return "no error message"
