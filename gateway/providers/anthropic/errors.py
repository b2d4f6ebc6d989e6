"""Anthropic failures into the gateway's error hierarchy: SDK exceptions and error events."""

from __future__ import annotations

from typing import Any

import anthropic

from gateway import upstream
from gateway.errors import UpstreamError
from gateway.providers._errors import connection_error, error_for_status
from gateway.providers._sdk import redact, stream_error

NAME = "anthropic"


def translate(exc: Exception, secret: str | None) -> Exception:
    """The gateway error for an SDK or transport failure (others pass through)."""
    if isinstance(exc, anthropic.APIStatusError):
        message = exc.api_message or "no error message"
        return error_for_status(
            NAME, exc.status_code, redact(message, secret), exc.response.headers
        )
    if isinstance(exc, anthropic.APIConnectionError):
        # The SDK's own message is bland; the transport error behind it says what failed.
        return connection_error(
            NAME,
            exc,
            timed_out=isinstance(exc, anthropic.APITimeoutError),
        )
    if isinstance(exc, upstream.TransportError):
        return connection_error(NAME, exc)
    return exc


def error_event(error: Any, secret: str | None) -> UpstreamError:
    """An ``error`` event mid-stream, or an error body with status 200."""
    if isinstance(error, dict):
        kind = error.get("type")
        message = str(error.get("message") or kind or "unknown error")
    else:
        kind, message = None, str(error)
    return stream_error(NAME, kind if isinstance(kind, str) else None, redact(message, secret))
