"""Outbound frames as JSON bytes: the per-token path, plain dicts and orjson only.

The shapes match the outbound models of :mod:`gateway.ws.messages` (a test checks
that); pydantic is deliberately not involved here. :func:`as_gateway_error` is the
one place where sessions exceptions and unexpected failures become wire errors.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway import errors
from gateway.errors import GatewayError
from sessions import errors as session_errors
from sessions.events import (
    Created,
    Delta,
    Done,
    Moved,
    ReasoningDelta,
    ResumeResult,
    SinkEvent,
    ToolArgumentsDelta,
    ToolCallAdded,
    ToolCallDone,
)

_dumps = orjson.dumps


def delta(response_id: str, seq: int, text: str) -> bytes:
    return _dumps(
        {
            "type": "response.output_text.delta",
            "response_id": response_id,
            "seq": seq,
            "delta": text,
        }
    )


def event(ev: SinkEvent) -> bytes:
    """Any session event (a :class:`Delta` is better sent through :func:`delta`)."""
    if type(ev) is Delta:
        return delta(ev.response_id, ev.seq, ev.text)
    if type(ev) is Created:
        return _dumps(
            {
                "type": "response.created",
                "response_id": ev.response_id,
                "request_id": ev.request_id,
                "model": ev.meta.model,
                "provider": ev.meta.provider,
                "epoch": ev.epoch,
                "seq": ev.seq,
            }
        )
    if type(ev) is Done:
        return done(ev)
    if type(ev) is ToolArgumentsDelta:
        return _dumps(
            {
                "type": "response.function_call_arguments.delta",
                "response_id": ev.response_id,
                "seq": ev.seq,
                "call_id": ev.call_id,
                "output_index": ev.index,
                "delta": ev.delta,
            }
        )
    if type(ev) is ToolCallAdded:
        return _dumps(
            {
                "type": "response.output_item.added",
                "response_id": ev.response_id,
                "seq": ev.seq,
                "output_index": ev.index,
                "item": {
                    "type": "function_call",
                    "call_id": ev.call_id,
                    "name": ev.name,
                    "arguments": "",
                },
            }
        )
    if type(ev) is ToolCallDone:
        return _dumps(
            {
                "type": "response.function_call_arguments.done",
                "response_id": ev.response_id,
                "seq": ev.seq,
                "output_index": ev.index,
                "call_id": ev.call_id,
                "name": ev.name,
                "arguments": ev.arguments,
            }
        )
    if type(ev) is ReasoningDelta:
        return _dumps(
            {
                "type": "response.reasoning.delta",
                "response_id": ev.response_id,
                "seq": ev.seq,
                "delta": ev.text,
            }
        )
    if type(ev) is ResumeResult:
        return _dumps(
            {
                "type": "resume.result",
                "response_id": ev.response_id,
                "recovered": ev.recovered,
                "from_seq": ev.from_seq,
            }
        )
    if type(ev) is Moved:
        return _dumps(
            {"type": "response.moved", "response_id": ev.response_id, "request_id": ev.request_id}
        )
    raise TypeError(f"not a session event: {type(ev).__name__}")


def done(ev: Done) -> bytes:
    frame: dict[str, Any] = {
        "type": "response.done",
        "response_id": ev.response_id,
        "request_id": ev.request_id,
        "seq": ev.seq,
        "status": str(ev.status),
        "reason": ev.reason,
        "finish_reason": ev.finish_reason,
        "usage": {"input_tokens": ev.input_tokens, "output_tokens": ev.output_tokens},
    }
    if ev.error is not None:
        frame["error"] = error_body(
            as_gateway_error(ev.error), request_id=ev.request_id, response_id=ev.response_id
        )
    return _dumps(frame)


def control(frame: dict[str, Any]) -> bytes:
    """A rare frame (session.created, pong, ...) already shaped as a dict."""
    return _dumps(frame)


# --- errors -------------------------------------------------------------------------

_SESSION_ERRORS: dict[type[session_errors.SessionError], type[GatewayError]] = {
    session_errors.DuplicateRequest: errors.DuplicateRequest,
    session_errors.TooManyResponses: errors.TooManyResponses,
    session_errors.ConversationBusy: errors.ConversationBusy,
    session_errors.UnknownResponse: errors.ResponseNotFound,
    session_errors.Draining: errors.ServerDraining,
    session_errors.BackendUnavailable: errors.SessionsUnavailable,
}


def as_gateway_error(exc: BaseException) -> GatewayError:
    """The wire error for anything the endpoint or a response can fail with.

    Unexpected exceptions become ``internal_error`` with a fixed message: their text
    may hold content or secrets.
    """
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, session_errors.SessionError):
        for cls in type(exc).__mro__:
            mapped = _SESSION_ERRORS.get(cls)
            if mapped is not None:
                return mapped(str(exc) or mapped.code.replace("_", " "))
        return errors.InternalError("session error")
    return errors.InternalError("internal error")


def error_body(
    err: GatewayError,
    *,
    event_id: str | None = None,
    request_id: str | None = None,
    response_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": err.type,
        "code": err.code,
        "message": err.message,
        "param": err.param,
        "request_id": request_id,
        "response_id": response_id,
        "event_id": event_id,
        "retryable": err.retryable,
    }
    if err.retry_after_ms is not None:
        body["retry_after_ms"] = err.retry_after_ms
    return body


def error(
    exc: BaseException,
    *,
    event_id: str | None = None,
    request_id: str | None = None,
    response_id: str | None = None,
) -> bytes:
    """An ``error`` frame for ``exc`` naming every id the caller knows."""
    body = error_body(
        as_gateway_error(exc), event_id=event_id, request_id=request_id, response_id=response_id
    )
    return _dumps({"type": "error", "error": body})
