"""The WebSocket session endpoint (``/api/v1/ws``): protocol ``chat-gateway.v1``.

See ``docs/protocol.md`` for the protocol itself. :func:`routes` is mounted by the
app; :func:`drain_hook` is registered with the lifecycle by the app's lifespan.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.ws.drain import drain_hook

__all__ = ["drain_hook", "routes"]


def routes() -> list[BaseRoute]:
    # Imported here: the endpoint pulls in the services, which import this package
    # (its drain and limits modules) -- at run time, not as a circle of modules.
    from gateway.ws.endpoint import PATH
    from gateway.ws.endpoint import routes as _routes
    from gateway.ws.upgrade_hint import route as upgrade_hint

    return [*_routes(), upgrade_hint(PATH)]
