"""Plain HTTP routes: health, OpenAI-compatible chat completions, model listing."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
