"""The Starlette application: routes, middleware and the lifespan that owns the services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from gateway import http, ws
from gateway.agents import Orchestrator
from gateway.lifecycle import Lifecycle
from gateway.providers import ProviderRegistry
from gateway.router import Router
from gateway.services import Services
from gateway.settings import Settings


def create_app(settings: Settings) -> Starlette:
    """Build the app. Nothing is read from the environment here: ``settings`` is everything."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        providers = ProviderRegistry(settings)
        router = Router(settings, providers)
        services = Services(
            settings=settings,
            providers=providers,
            router=router,
            orchestrator=Orchestrator(settings, router),
            lifecycle=Lifecycle(settings.drain_timeout_s),
        )
        app.state.services = services
        try:
            async with anyio.create_task_group() as tg:
                services.lifecycle.attach(tg)
                services.lifecycle.started = True
                yield
                services.lifecycle.started = False
                tg.cancel_scope.cancel()
        finally:
            await providers.aclose()

    middleware = []
    if settings.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type"],
            )
        )
    return Starlette(
        routes=[*http.routes(), *ws.routes()],
        middleware=middleware,
        lifespan=lifespan,
    )
