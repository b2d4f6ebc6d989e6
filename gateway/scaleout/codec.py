"""Session events to and from Redis stream entries, generically.

An event is stored as its class name and its fields (orjson), so an event type
added to :data:`sessions.events.ResponseEvent` needs no change here as long as
its fields are JSON values. Two fields are special: ``Created.meta`` (a
:class:`~sessions.ResponseMeta`) and ``Done.error`` (an exception: stored as the
wire error it maps to, never its text unless it is a :class:`GatewayError`,
whose messages are safe to show by contract).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import orjson

from gateway.errors import GatewayError, RelayedError
from sessions.events import Created, Done, ResponseEvent, ResponseMeta, Status

_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in typing.get_args(ResponseEvent)}
_FIELDS: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name != "response_id")
    for cls in _TYPES.values()
}


def encode(event: ResponseEvent) -> bytes:
    cls = type(event)
    body: dict[str, Any] = {"t": cls.__name__}
    for name in _FIELDS[cls]:
        body[name] = getattr(event, name)
    if cls is Created:
        body["meta"] = dataclasses.asdict(event.meta)  # type: ignore[union-attr]
    elif cls is Done and body["error"] is not None:
        body["error"] = _error_fields(body["error"])
    return orjson.dumps(body)


def decode(response_id: str, data: bytes) -> ResponseEvent:
    body: dict[str, Any] = orjson.loads(data)
    cls = _TYPES[body.pop("t")]
    if cls is Created:
        body["meta"] = ResponseMeta(**body["meta"])
    elif cls is Done:
        body["status"] = Status(body["status"])
        error = body.get("error")
        if error is not None:
            body["error"] = RelayedError(
                error["message"],
                code=error["code"],
                type=error["type"],
                retryable=error["retryable"],
            )
    event: ResponseEvent = cls(response_id=response_id, **body)
    return event


def _error_fields(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, GatewayError):
        return {
            "message": exc.message,
            "code": exc.code,
            "type": exc.type,
            "retryable": exc.retryable,
        }
    # Unexpected exceptions' text may hold content or secrets: never stored.
    return {
        "message": "internal error",
        "code": "internal_error",
        "type": "server_error",
        "retryable": False,
    }
