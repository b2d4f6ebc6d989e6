"""The Starlette application: routes, middleware and the lifespan that owns the services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware

from gateway import http, ui, ws
from gateway.agents import Orchestrator
from gateway.auth import Authenticator
from gateway.http import web_demo
from gateway.http.cors import CorsMiddleware
from gateway.lifecycle import Lifecycle
from gateway.limits import KeyLimits, LocalKeyLimits, OpenSocket, SocketRegistry
from gateway.metrics import GatewayState, Metrics
from gateway.probes import ProviderHealth
from gateway.providers import ProviderRegistry
from gateway.request_id import RequestIdMiddleware
from gateway.router import Router
from gateway.scaleout.limits import RedisKeyLimits
from gateway.scaleout.redis_backend import RedisBackend
from gateway.services import Services
from gateway.settings import Settings
from sessions import Backend, MemoryBackend, SessionManager

_log = structlog.get_logger("gateway.app")


def sessions_backend(settings: Settings) -> Backend:
    """The configured store of WebSocket sessions' responses."""
    if settings.sessions_backend == "redis":
        return RedisBackend(
            settings.redis_url.get_secret_value(),
            window_s=settings.resume_window_ms / 1000,
            prefix=settings.redis_key_prefix,
            lease_s=settings.redis_owner_lease_ms / 1000,
            stream_max_events=settings.redis_stream_max_events,
        )
    return MemoryBackend()


def key_limits(settings: Settings, backend: Backend) -> KeyLimits:
    """Per-client-key counters: shared through Redis along with the sessions."""
    if settings.sessions_backend == "redis":
        return RedisKeyLimits(
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_key_prefix,
            instance_id=backend.instance_id,
            lease_s=settings.redis_owner_lease_ms / 1000,
        )
    return LocalKeyLimits()


def create_app(settings: Settings) -> Starlette:
    """Build the app. Nothing is read from the environment here: ``settings`` is everything."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        providers = ProviderRegistry(settings)
        providers.warm()
        metrics = Metrics()
        router = Router(settings, providers, observer=metrics)
        backend = sessions_backend(settings)
        sessions = SessionManager(
            backend=backend,
            resume_window_s=settings.resume_window_ms / 1000,
            replay_max_events=settings.replay_max_events,
            replay_max_bytes=settings.replay_max_bytes,
            max_concurrent_responses=settings.max_concurrent_responses,
        )
        sockets: SocketRegistry[OpenSocket] = SocketRegistry(
            settings.max_sockets, settings.max_sockets_per_key
        )
        services = Services(
            settings=settings,
            providers=providers,
            router=router,
            orchestrator=Orchestrator(settings, router),
            lifecycle=Lifecycle(settings.drain_timeout_s),
            auth=Authenticator(settings),
            provider_health=ProviderHealth(settings, providers),
            sessions=sessions,
            sockets=sockets,
            key_limits=key_limits(settings, backend),
            metrics=metrics,
        )
        metrics.watch(_state_of(services))
        services.lifecycle.add_drain_hook(ws.drain_hook(sessions, sockets))
        services.lifecycle.add_drain_hook(services.http_streams.drain)
        app.state.services = services
        if not settings.auth_enabled:
            _log.warning(
                "auth disabled: anyone who can reach this port can use it "
                "(set GATEWAY_CLIENT_KEYS to require a key)",
                host=settings.host,
                port=settings.port,
            )
        try:
            # The manager outlives the lifecycle's task group: drain hooks use it.
            async with (
                services.key_limits.running(),
                sessions.running(),
                anyio.create_task_group() as tg,
            ):
                services.lifecycle.attach(tg)
                services.lifecycle.started = True
                yield
                services.lifecycle.started = False
                tg.cancel_scope.cancel()
        finally:
            await providers.aclose()

    middleware = [
        # Outermost: every response, the middleware's own refusals included, gets an id.
        Middleware(RequestIdMiddleware),
        Middleware(CorsMiddleware, allowed_origins=settings.allowed_origins),
    ]
    return Starlette(
        routes=[*http.routes(), *ui.routes(), *ws.routes(), *web_demo.routes(settings)],
        middleware=middleware,
        exception_handlers=http.exception_handlers(),
        lifespan=lifespan,
    )


def _loop_tasks() -> int:
    """Tasks of the running event loop (scrapes run in it); 0 outside one."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


def _state_of(services: Services) -> GatewayState:
    """What /metrics reads from the running services at each scrape."""
    sockets, sessions = services.sockets, services.sessions
    assert sockets is not None and sessions is not None
    router, providers = services.router, services.providers
    return GatewayState(
        open_sockets=lambda: len(sockets),
        running_responses=lambda: sessions.active_responses,
        http_streams=lambda: services.http_streams.count,
        loop_tasks=_loop_tasks,
        circuits=lambda: {
            name: router.breakers.state(name)
            for name in providers.known
            if providers.is_configured(name)
        },
    )
