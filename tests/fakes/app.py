"""The Starlette app every fake provider serves its routes with."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up before its request body arrived (a load driver stopped
    # mid-request): nobody to answer, nothing worth a traceback in the log.
    return Response(status_code=499)


def fake_app(routes: Sequence[BaseRoute]) -> Starlette:
    """A fake provider's app: its routes, and quiet about clients that hung up early."""
    return Starlette(routes=list(routes), exception_handlers={ClientDisconnect: _client_gone})
