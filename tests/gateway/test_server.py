"""GatewayServer: the first signal drains before uvicorn stops; a second one forces exit."""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from gateway.server import GatewayServer, build_server
from gateway.services import Services
from gateway.settings import load_settings

pytestmark = pytest.mark.anyio


class _NoSignals(GatewayServer):
    """The test process keeps its own signal handlers; the test calls handle_exit itself."""

    listening: anyio.Event

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@contextlib.asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[tuple[GatewayServer, str, anyio.Event]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    built = build_server(load_settings(port=port, **overrides))
    server = _NoSignals(built.config, built.app)
    server.listening = anyio.Event()
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve([sock])
        finally:
            stopped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        with anyio.fail_after(5):
            await server.listening.wait()
        try:
            yield server, f"http://127.0.0.1:{port}", stopped
        finally:
            server.should_exit = True
    sock.close()


def services(server: GatewayServer) -> Services:
    found: Services = server.app.state.services
    return found


async def test_first_signal_drains_before_uvicorn_stops() -> None:
    hook_started = anyio.Event()
    release = anyio.Event()

    async def slow_hook(deadline: float) -> None:
        hook_started.set()
        await release.wait()

    async with running(drain_timeout_s=30) as (server, base, stopped):
        services(server).lifecycle.add_drain_hook(slow_hook)
        server.handle_exit(signal.SIGTERM, None)
        with anyio.fail_after(5):
            await hook_started.wait()
        async with httpx.AsyncClient(base_url=base) as client:
            ready = await client.get("/health/ready")
            still_serving = await client.get("/health")
        assert (ready.status_code, ready.json()["status"]) == (503, "draining")
        assert still_serving.status_code == 200
        assert not server.should_exit  # uvicorn keeps running while the drain is under way
        assert not server._captured_signals  # uvicorn must not re-raise SIGTERM at exit
        release.set()
        with anyio.fail_after(5):
            await stopped.wait()
        assert services(server).lifecycle.drained.is_set()


async def test_a_drain_by_the_admin_route_ends_in_exit_like_one_by_signal() -> None:
    # A drained instance serves nothing new: it must exit, not linger unready.
    hook_started = anyio.Event()
    release = anyio.Event()

    async def slow_hook(deadline: float) -> None:
        hook_started.set()
        await release.wait()

    async with running(drain_timeout_s=30, admin_token="adm-0123456789") as (
        server,
        base,
        stopped,
    ):
        services(server).lifecycle.add_drain_hook(slow_hook)
        async with httpx.AsyncClient(base_url=base) as client:
            drain = await client.post(
                "/admin/drain", headers={"authorization": "Bearer adm-0123456789"}
            )
        assert drain.status_code == 202
        with anyio.fail_after(5):
            await hook_started.wait()
        assert not server.should_exit  # not before the drain is over
        release.set()
        with anyio.fail_after(5):
            await stopped.wait()
        assert server.should_exit and not server.force_exit


async def test_second_signal_forces_exit() -> None:
    hook_started = anyio.Event()

    async def never(deadline: float) -> None:
        hook_started.set()
        await anyio.sleep_forever()

    async with running(drain_timeout_s=30) as (server, _, stopped):
        services(server).lifecycle.add_drain_hook(never)
        server.handle_exit(signal.SIGTERM, None)
        with anyio.fail_after(5):
            await hook_started.wait()
        assert not server.should_exit
        server.handle_exit(signal.SIGINT, None)
        assert server.should_exit and server.force_exit
        with anyio.fail_after(5):
            await stopped.wait()


async def test_drain_lets_an_in_flight_http_stream_finish() -> None:
    body = {
        "model": "demo/lorem",
        "max_tokens": 30,
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
    }
    async with running(drain_timeout_s=30, demo_token_delay_ms=10) as (server, base, stopped):
        async with (
            httpx.AsyncClient(base_url=base) as client,
            client.stream("POST", "/api/v1/chat/completions", json=body) as response,
        ):
            received = b""
            exit_during_stream = False
            async for chunk in response.aiter_bytes():
                received += chunk
                if b"[DONE]" not in received:
                    exit_during_stream |= server.should_exit
                if b'"content":"Lorem"' in received and not server._signalled:
                    server.handle_exit(signal.SIGTERM, None)
        with anyio.fail_after(5):
            await stopped.wait()
    assert server._signalled
    assert not exit_during_stream  # uvicorn was not told to stop while the stream ran
    assert received.endswith(b"data: [DONE]\n\n")
    assert received.count(b'"content":" ') == 29  # all 30 tokens arrived


@pytest.fixture
def default_collector() -> Iterator[None]:
    """CPython's collector settings for the test, whatever start-up changes."""
    saved = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("default_collector")
async def test_start_up_freezes_its_heap_and_spaces_young_collections_out() -> None:
    async with running():
        assert gc.get_freeze_count() > 10_000  # the imports' objects are out of the collector
        assert gc.get_threshold() == (10_000, 10, 10)


def test_the_default_stop_fits_a_30_s_grace_period() -> None:
    from gateway.server import GRACEFUL_SHUTDOWN_S

    worst = load_settings().drain_timeout_s + GRACEFUL_SHUTDOWN_S
    assert worst <= 25  # Kubernetes' default terminationGracePeriodSeconds is 30
    assert build_server(load_settings()).config.timeout_graceful_shutdown == GRACEFUL_SHUTDOWN_S
