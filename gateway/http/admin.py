"""``POST /admin/drain``: take this instance out of rotation (e.g. before a deploy).

The drain is the one SIGTERM starts (:mod:`gateway.server`), and ends the same way:
once it is over the process exits, for its supervisor to restart or replace.

The route exists only when ``settings.admin_token`` is set, and requires it as a
bearer token; it is separate from the client keys on purpose.
"""

from __future__ import annotations

import hmac

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.auth import bearer_token
from gateway.errors import Unauthorized
from gateway.http._responses import JSON
from gateway.services import services_of


async def drain(request: Request) -> Response:
    services = services_of(request)
    expected = services.settings.admin_token
    if expected is None:
        # Without an admin token the endpoint does not exist: 404, not 401.
        raise HTTPException(404)
    token = bearer_token(request.headers)
    if token is None or not hmac.compare_digest(
        token.encode("utf-8"), expected.get_secret_value().encode("utf-8")
    ):
        raise Unauthorized("admin token required")
    lifecycle = services.lifecycle
    lifecycle.start_drain()
    deadline = lifecycle.drain_deadline
    remaining_ms = 0 if deadline is None else max(0, int((deadline - anyio.current_time()) * 1000))
    return JSON({"status": "draining", "deadline_ms": remaining_ms}, status_code=202)


def routes() -> list[BaseRoute]:
    return [Route("/admin/drain", drain, methods=["POST"])]
