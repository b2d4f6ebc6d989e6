"""A plain HTTP request to the socket route: ``426 Upgrade Required`` with a hint.

Opening ``/api/v1/ws`` in a browser tab or with curl used to say "no such route",
which sends people looking for a typo instead of a WebSocket client.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.errors import UpgradeRequired
from gateway.http._responses import error_response
from gateway.ws.endpoint import PATH
from gateway.ws.messages import PROTOCOL


async def upgrade_required(request: Request) -> Response:
    err = UpgradeRequired(
        f"{request.url.path} is a WebSocket endpoint: connect with a WebSocket client"
        f" offering the subprotocol '{PROTOCOL}' (see docs/protocol.md)"
    )
    return error_response(err, {"upgrade": "websocket", "connection": "Upgrade"})


def routes() -> list[BaseRoute]:
    # A Route matches only HTTP requests, the socket's WebSocketRoute only upgrades:
    # both can hold the one path.
    return [Route(PATH, upgrade_required, methods=["GET"])]
