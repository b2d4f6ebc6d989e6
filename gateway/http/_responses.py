"""Errors as OpenAI-shaped JSON, and a fast JSON response (orjson)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError, InternalError, Unauthorized
from gateway.request_id import HEADER, request_id_of

_HTTP_CODES = {
    404: ("not_found", "invalid_request_error", "no such route"),
    405: ("method_not_allowed", "invalid_request_error", "method not allowed"),
}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_headers(err: GatewayError) -> dict[str, str]:
    if err.retry_after_ms is None:
        return {}
    # ``retry-after`` is whole seconds (rounded up); ``retry-after-ms`` is OpenAI's precise form.
    seconds = -(-err.retry_after_ms // 1000)
    return {"retry-after": str(seconds), "retry-after-ms": str(err.retry_after_ms)}


def error_response(err: GatewayError, headers: dict[str, str] | None = None) -> JSON:
    return JSON(
        {"error": err.to_dict()},
        status_code=err.http_status,
        headers={**error_headers(err), **(headers or {})},
    )


async def gateway_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if isinstance(exc, Unauthorized):
        return error_response(exc, {"www-authenticate": "Bearer"})
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown routes and methods) in the OpenAI error shape."""
    assert isinstance(exc, HTTPException)
    code, type_, message = _HTTP_CODES.get(
        exc.status_code, ("bad_request", "invalid_request_error", exc.detail)
    )
    body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
    return JSON(body, status_code=exc.status_code, headers=exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this response, so uvicorn logs the traceback once.
    # It runs outside the request-id middleware: the id is put on here.
    return error_response(InternalError("internal error"), {HEADER: request_id_of(request)})


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: gateway_error_handler,
    HTTPException: http_exception_handler,
    Exception: unhandled_error_handler,
}
