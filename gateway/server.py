"""uvicorn, with a graceful drain on SIGTERM before it is told to stop.

uvicorn's own shutdown closes every WebSocket with 1012 at once, so on the first
SIGTERM/SIGINT this server does not stop: it starts the app's drain (readiness
turns 503, sessions are told to finish) and sets ``should_exit`` only when the
drain is done or its deadline passed. A second signal exits at once. A drain
started by ``POST /admin/drain`` ends the same way: the process exits once drained.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
from types import FrameType
from typing import Any

import anyio
import structlog
import uvicorn
from anyio.abc import TaskGroup
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.healthcheck import remove_address, served_url, write_address
from gateway.services import Services
from gateway.settings import ConfigError, Settings
from gateway.startup import report

_log = structlog.get_logger("gateway.server")

# After the drain, uvicorn waits at most this for connections still open (the drain
# has ended every answer by then, so this is rarely used), then cancels them.
# drain_timeout_s + this is the longest a stop takes: 20 + 5 = 25 s by default.
GRACEFUL_SHUTDOWN_S = 5

# Net tracked allocations between two young collections (CPython's default: 700);
# see _tune_collector.
_YOUNG_COLLECTION_THRESHOLD = 10_000


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested: anyio.Event | None = None
        self._tasks: TaskGroup | None = None
        self._signalled = False
        self.url: str | None = None  # once listening

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._drain_requested = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                self._tasks = tg
                tg.start_soon(self._drain_on_signal)
                await super().serve(sockets)
                tg.cancel_scope.cancel()
        finally:
            self._forget_address()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # runs the app's lifespan start-up first
        _tune_collector()
        services = self._services()
        if self.started and services is not None and self._tasks is not None:
            self._tasks.start_soon(self._exit_once_drained, services)
        if self.started:
            self._announce()

    def _announce(self) -> None:
        """Log where this server listens (uvicorn does not when handed its socket) and
        write it to ``settings.address_file`` for ``chat-gateway health``."""
        port = self.servers[0].sockets[0].getsockname()[1]
        self.url = served_url(self.config.host, port)
        services = self._services()
        config = report(services.settings) if services is not None else {}
        _log.info("gateway.listening", url=self.url, **config)
        if services is not None and services.settings.address_file is not None:
            write_address(services.settings.address_file, self.url)

    def _forget_address(self) -> None:
        services = self._services()
        if services is not None and services.settings.address_file is not None and self.url:
            remove_address(services.settings.address_file, self.url)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes of whatever the loop was
        # doing: only hand the work over to the loop, thread-safely.
        if self._signalled or self._loop is None or self._drain_requested is None:
            self.should_exit = True
            self.force_exit = True
            return
        self._signalled = True
        self._loop.call_soon_threadsafe(self._drain_requested.set)
        # Not recorded in ``_captured_signals``: uvicorn would re-raise it after
        # shutdown, and the default SIGTERM action would turn a clean drain into
        # exit status -15.

    async def _drain_on_signal(self) -> None:
        assert self._drain_requested is not None
        await self._drain_requested.wait()
        services = self._services()
        if services is None or not self.started:  # lifespan not up (or failed): no drain
            self.should_exit = True
            return
        lifecycle = services.lifecycle
        _log.info("drain.started", timeout_s=lifecycle.drain_timeout_s, by="signal")
        lifecycle.start_drain()

    async def _exit_once_drained(self, services: Services) -> None:
        """Stop uvicorn once a drain is over, whoever started it (a signal or the admin
        route): a drained instance serves nothing new, so it must not linger."""
        await services.lifecycle.drained.wait()
        _log.info("drain.finished")
        self.should_exit = True

    def _services(self) -> Services | None:
        services: Services | None = getattr(self.app.state, "services", None)
        return services


def _tune_collector() -> None:
    """Freeze the start-up heap out of the cyclic garbage collector, then space its
    collections out.

    The SDKs, pydantic and their imports leave ~200k long-lived objects, and a full
    collection walked all of them: ~120 ms of stopped event loop, every stream
    stalled together, tens of times a minute under load. Frozen objects are never
    walked again; what requests allocate is still collected.

    CPython starts a young collection when tracked allocations minus deallocations
    pass a threshold (700 by default). A streamed answer keeps a few hundred tracked
    objects alive for its whole length (its coroutine chain, task, parser, headers),
    allocated while earlier answers' objects are freed: the count hardly moves while
    the young generation fills with the live answers' objects. Whenever the count
    did cross 700 (in bursts every few seconds at concurrency 100) the collection
    walked all of them, 1-11 ms of stopped event loop each (a gc.callbacks probe),
    and found next to nothing to free: the hot paths make almost no reference
    cycles. A higher threshold makes those pauses rare; it also bounds the cyclic
    garbage (tracebacks on error paths) that can pile up before a collection to a
    few MB.

    Bench (bench/README.md optimisation log, c=100): the freeze took WebSocket added
    time to first token p99 from +128 to +6.9 ms (full runs before and after); the
    threshold took the GC pauses in 24 s from ~30 young collections of 1-2 ms to one,
    and WebSocket added time to first token p99 from +5.03 to +3.27 ms (``bench.ab``).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, older, oldest)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options in production, but for the app and the address (the socket
    and HTTP suites run their servers with these too)."""
    return {
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,  # deflate state costs ~hundreds of KiB per socket
        # 1009 before the message is read, no error frame (docs/protocol.md).
        "ws_max_size": settings.max_message_bytes,
        "proxy_headers": True,
        "log_config": None,  # structlog (gateway.logging) owns logging
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "lifespan": "on",
        "server_header": False,
    }


def build_server(settings: Settings) -> GatewayServer:
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, **server_options(settings))
    return GatewayServer(config, app)


def bind(settings: Settings) -> socket.socket:
    """The listening socket, bound before uvicorn starts, so that a port in use is one
    configuration error naming the setting (uvicorn would log it after "startup
    complete" and exit through a task group's traceback)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        return socket.create_server(address, family=family)
    except socket.gaierror as exc:
        raise ConfigError(f"host: cannot resolve '{settings.host}' ({exc.strerror})") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = " (another process listens there)" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(
            f"port: cannot listen on {settings.host}:{settings.port}: {reason}{hint};"
            " choose another with --port or GATEWAY_PORT"
        ) from None


def run(settings: Settings) -> None:
    """Serve until stopped. Raises :class:`ConfigError` when the address cannot be bound."""
    sock = bind(settings)
    build_server(settings).run(sockets=[sock])
