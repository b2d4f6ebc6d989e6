"""The WebSocket session endpoint (``/api/v1/ws``): protocol ``chat-gateway.v1``.

See ``docs/protocol.md`` for the protocol itself. :func:`routes` is mounted by the
app; :func:`drain_hook` is registered with the lifecycle by the app's lifespan.
"""

from __future__ import annotations

from gateway.ws.drain import drain_hook
from gateway.ws.endpoint import routes

__all__ = ["drain_hook", "routes"]
