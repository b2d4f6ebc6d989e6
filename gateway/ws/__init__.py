"""The WebSocket session endpoint (``/api/v1/ws``)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
