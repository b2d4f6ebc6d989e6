"""Graceful drain of every socket before the instance stops.

Order matters: clients first learn the deadline (``server.draining``) so they can
stop sending; the session manager then refuses new responses and lets running
ones finish until the deadline (the rest end ``incomplete``/``server_shutdown``);
only then is each socket flushed and closed with 1012, so every ``response.done``
reaches its client before the close.
"""

from __future__ import annotations

import anyio

from gateway.lifecycle import DrainHook
from gateway.limits import OpenSocket, SocketRegistry
from gateway.ws import close_codes
from gateway.ws.outbox import CLOSE_GRACE_S
from sessions import SessionManager


def drain_hook(manager: SessionManager, sockets: SocketRegistry[OpenSocket]) -> DrainHook:
    async def drain(deadline: float) -> None:
        remaining_ms = max(0, int((deadline - anyio.current_time()) * 1000))
        for connection in sockets:
            connection.draining(remaining_ms)
        await manager.drain(deadline)
        for connection in sockets:
            connection.close(close_codes.SERVICE_RESTART)
        # Each writer bounds its own flush and close by CLOSE_GRACE_S.
        with anyio.move_on_after(CLOSE_GRACE_S + 1):
            await sockets.wait_empty()

    return drain
