"""Health endpoints for load balancers and monitoring; always open (no client key).

``/health/ready`` reflects only this process (started, not draining): a provider
outage must not take every gateway replica out of rotation at once. Provider
reachability is reported separately by ``/health/providers``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway import __version__
from gateway.http._responses import JSON
from gateway.probes import ProviderHealth
from gateway.services import services_of

SERVICE_NAME = "chat-gateway"


async def health(request: Request) -> Response:
    return JSON({"status": "ok", "service": SERVICE_NAME, "version": __version__})


async def live(request: Request) -> Response:
    return JSON({"status": "live"})


async def ready(request: Request) -> Response:
    services = services_of(request)
    lifecycle = services.lifecycle
    body: dict[str, object] = {}
    if services.sessions is not None:
        # Reported, not a reason for 503: a Redis outage hits every replica alike, and
        # each still serves HTTP chat and the responses it runs (see the README).
        backend = services.sessions.backend
        body["sessions_backend"] = {
            "kind": services.settings.sessions_backend,
            "available": backend.available,
        }
    if lifecycle.ready:
        return JSON({"status": "ready", **body})
    status = "draining" if lifecycle.draining else "starting"
    return JSON({"status": status, **body}, status_code=503)


async def providers(request: Request) -> Response:
    services = services_of(request)
    checker = services.provider_health
    if checker is None:
        checker = services.provider_health = ProviderHealth(services.settings, services.providers)
    statuses = await checker.statuses()
    # Always 200: this page reports on the upstreams, it is not this process's health.
    degraded = any(s.configured and not s.reachable for s in statuses.values())
    return JSON(
        {
            "status": "degraded" if degraded else "ok",
            "providers": {
                name: {**status.to_dict(), "circuit": services.router.breakers.state(name)}
                for name, status in statuses.items()
            },
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/health/providers", providers, methods=["GET"]),
    ]
