"""CORS with a hint: a refused preflight names the setting that would allow it.

Starlette's CORSMiddleware answers allowed preflights; without any allowed origin it
is not installed and a preflight fell through to ``405 method not allowed``, and with
some it answered a bare ``400 Disallowed CORS origin``. Either way nothing told the
page's developer (or the server log) that ``GATEWAY_ALLOWED_ORIGINS`` is the knob.
"""

from __future__ import annotations

import structlog
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import origins
from gateway.errors import Forbidden
from gateway.http._responses import error_response

_log = structlog.get_logger("gateway.http.cors")


class CorsMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self._allowed = allowed_origins
        self._plain = app
        self._cors: ASGIApp | None = (
            CORSMiddleware(
                app,
                allow_origins=allowed_origins,
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["authorization", "content-type"],
            )
            if allowed_origins
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if (
                origin is not None
                and "access-control-request-method" in headers
                and not origins.listed(origin, self._allowed)
            ):
                shown = origin[: origins.MAX_SHOWN]
                _log.warning("cors.origin_refused", origin=shown, setting=origins.SETTING)
                await error_response(Forbidden(origins.refused_hint(origin)))(scope, receive, send)
                return
        await (self._cors or self._plain)(scope, receive, send)
