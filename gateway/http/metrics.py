"""``GET /metrics``: the Prometheus text format (see :mod:`gateway.metrics`).

Open by default, like the health routes (scrapers run inside the deployment);
with ``settings.metrics_token`` set, a scraper must send it as a bearer token
(Prometheus' ``authorization`` / ``bearer_token`` scrape settings).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.auth import bearer_token
from gateway.errors import Unauthorized
from gateway.metrics import CONTENT_TYPE
from gateway.services import services_of


async def metrics(request: Request) -> Response:
    services = services_of(request)
    expected = services.settings.metrics_token
    if expected is not None:
        token = bearer_token(request.headers) or ""
        if not hmac.compare_digest(
            token.encode("utf-8"), expected.get_secret_value().encode("utf-8")
        ):
            raise Unauthorized("metrics token required")
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)


def routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics, methods=["GET"])]
