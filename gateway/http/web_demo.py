"""``GET /``: the web demo page (``web-demo/``), when it has been built.

The page is a static Vite build: ``index.html`` at ``/`` and its hashed files under
``/assets/``. Only those two routes are added, so every other path keeps the API's
own 404/405 answers. Without a build (no Node.js on the machine) the gateway starts
as before and ``/`` answers 404.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.settings import Settings

_log = structlog.get_logger("gateway.http.web_demo")


def _checkout_build() -> Path:
    # web-demo/dist next to the package: where `make run` builds it in a source checkout.
    return Path(__file__).resolve().parents[2] / "web-demo" / "dist"


def routes(settings: Settings) -> list[BaseRoute]:
    directory = settings.web_demo_dir or _checkout_build()
    index = directory / "index.html"
    if not index.is_file():
        _log.info("web_demo.not_built", directory=str(directory))
        return []

    async def page(request: Request) -> Response:
        # The HTML names the hashed asset files, so it must never be cached stale.
        return FileResponse(index, headers={"cache-control": "no-cache"})

    return [
        Route("/", page, methods=["GET", "HEAD"], name="web_demo"),
        Mount("/assets", StaticFiles(directory=directory / "assets", check_dir=False)),
    ]
