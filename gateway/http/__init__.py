"""Plain HTTP routes: health, OpenAI-compatible chat completions, model listing, admin."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from gateway.http import admin, chat, health, metrics, models, openapi, upgrade_hint
from gateway.http._responses import EXCEPTION_HANDLERS


def routes() -> list[BaseRoute]:
    return [
        *health.routes(),
        *chat.routes(),
        *models.routes(),
        *admin.routes(),
        *metrics.routes(),
        *openapi.routes(),
        *upgrade_hint.routes(),
    ]


def exception_handlers() -> dict[Any, Any]:
    """Every error the HTTP API reports, in OpenAI's ``{"error": {...}}`` shape."""
    return dict(EXCEPTION_HANDLERS)


__all__ = ["exception_handlers", "routes"]
