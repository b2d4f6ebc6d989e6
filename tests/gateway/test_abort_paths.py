"""Stop reaches the upstream synchronously, through the WebSocket producer and the SSE response.

The client side of the upstream connection is read from the kernel (psutil):
once the socket is shut down it leaves ESTABLISHED at once, with no await in
between, so these tests tell the synchronous abort from the orderly close that
only happens when the cancelled task runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import anyio
import psutil
import pytest
from starlette.types import Message

from gateway.agents import Prepared
from gateway.http._stream import ChatStreamResponse
from gateway.inflight import InFlight
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatMessage, ChatRequest
from gateway.relay import Relay
from gateway.router import Router
from gateway.settings import load_settings
from gateway.telemetry import ChatSummary
from gateway.ws.producer import Producer
from sessions import SessionManager, Status
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.ollama import create_app as ollama_app
from tests.fakes.openai import create_app as openai_app
from tests.sessions._support import ListSink

pytestmark = pytest.mark.anyio

SLOW = Scenario(tokens=[f" t{i}" for i in range(200)], delay_s=0.02)
MODELS = {"openai": "openai/gpt-4o-mini", "ollama": "ollama/llama3.2:latest"}


@contextlib.asynccontextmanager
async def routed(provider: str) -> AsyncIterator[tuple[FakeUpstream, Router, int]]:
    upstream = FakeUpstream()
    app = openai_app(upstream) if provider == "openai" else ollama_app(upstream)
    async with serve(app) as base:
        if provider == "openai":
            settings = load_settings(openai_base_url=base + "/v1", openai_api_key="sk-test")
        else:
            settings = load_settings(ollama_base_url=base)
        registry = ProviderRegistry(settings)
        try:
            port = urlsplit(base).port
            assert port is not None
            yield upstream, Router(settings, registry), port
        finally:
            await registry.aclose()


def upstream_states(port: int) -> list[str]:
    """TCP states of this process's client-side connections to the fake upstream."""
    return [
        c.status
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    ]


def prepared(router: Router, provider: str) -> Prepared:
    model = MODELS[provider]
    request = ChatRequest(model, (ChatMessage("user", "Hi"),))
    return Prepared(route=router.resolve(model), request=request, agent=None)


def summary(transport: str) -> ChatSummary:
    return ChatSummary(
        request_id="req-1", transport=transport, principal="alice", model=None, stream=True
    )


@contextlib.contextmanager
def cyclic_garbage() -> Iterator[set[str]]:
    """Type names of what only the cyclic collector could free, made inside the block.

    The collector is off meanwhile, so it cannot clean up behind the test's back.
    """
    found: set[str] = set()
    gc.collect()
    gc.disable()
    try:
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found.update(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"]
)
@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("how", ["cancel", "disconnect", "upstream reset"])
async def test_an_ended_ws_answer_is_freed_without_the_cyclic_collector(
    provider: str, how: str
) -> None:
    # A raised exception's traceback holds the frames it passed through, locals
    # included; a frame that also held the exception (or an object holding it) made
    # a cycle that kept the whole answer (producer, session response, upstream
    # exchange) alive until a collection, and under load those collections stopped
    # the event loop for milliseconds.
    async with (
        routed(provider) as (upstream, router, _),
        SessionManager(resume_window_s=0).running() as manager,
    ):
        upstream.queue(replace(SLOW, reset_after=3) if how == "upstream reset" else SLOW)
        sink = ListSink()
        session = manager.open_session("alice", sink)
        response, _ = await manager.create_response(
            session,
            "req-1",
            produce=Producer(Relay(router, prepared(router, provider), summary("ws"))),
        )
        response_id = response.id
        await sink.wait_for(lambda _: len(sink.texts(response_id)) >= 2)
        with cyclic_garbage() as garbage:
            if how == "cancel":
                await manager.cancel(session, response_id=response.id)
            elif how == "disconnect":
                manager.close_session(session)
            with anyio.fail_after(2):
                await upstream.last.ended.wait()
                await manager.wait_idle()
            expected = Status.FAILED if how == "upstream reset" else Status.CANCELLED
            assert response.status is expected
            del response
            sink.events.clear()
    assert not garbage & {"Producer", "Relay", "Response", "Exchange", "SdkStream", "Prepared"}, (
        garbage
    )


@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("how", ["cancel", "disconnect"])
async def test_ws_stop_shuts_the_upstream_socket_within_the_call(provider: str, how: str) -> None:
    async with (
        routed(provider) as (upstream, router, port),
        SessionManager(resume_window_s=0).running() as manager,
    ):
        upstream.queue(SLOW)
        sink = ListSink()
        session = manager.open_session("alice", sink)
        produce = Producer(Relay(router, prepared(router, provider), summary("ws")))
        response, _ = await manager.create_response(session, "req-1", produce=produce)
        await sink.wait_for(lambda _: len(sink.texts(response.id)) >= 2)
        assert upstream_states(port) == ["ESTABLISHED"]
        if how == "cancel":
            await manager.cancel(session, response_id=response.id)
        else:
            manager.close_session(session)  # resume window 0: cancelled at once
        # No await since the call: only the synchronous abort can have done this.
        states = upstream_states(port)
        assert states
        assert "ESTABLISHED" not in states
        assert response.status is Status.CANCELLED
        record = upstream.last
        with anyio.fail_after(1):
            await record.ended.wait()
            await manager.wait_idle()
    assert record.outcome == "disconnected"
    assert record.chunks_sent < len(SLOW.tokens)


async def test_sse_hang_up_shuts_the_upstream_while_the_responder_is_busy() -> None:
    """The responder is stuck in a (shielded) send, so only the abort can close the upstream."""
    async with routed("openai") as (upstream, router, port):
        upstream.queue(SLOW)
        response = ChatStreamResponse(
            router,
            InFlight(),
            prepared(router, "openai"),
            summary("http"),
            include_usage=False,
            log_content=False,
        )
        hang_up = anyio.Event()
        stuck = anyio.Event()
        release = anyio.Event()
        bodies: list[bytes] = []

        async def receive() -> Message:
            await hang_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] != "http.response.body":
                return
            bodies.append(message["body"])
            if len(bodies) == 3:  # the role chunk, then two deltas
                stuck.set()
                with anyio.CancelScope(shield=True):
                    await release.wait()

        scope: Any = {"type": "http"}
        async with anyio.create_task_group() as tg:
            tg.start_soon(response, scope, receive, send)
            with anyio.fail_after(2):
                await stuck.wait()
            try:
                assert upstream_states(port) == ["ESTABLISHED"]
                hang_up.set()
                record = upstream.last
                with anyio.fail_after(1):
                    await record.ended.wait()
                assert "ESTABLISHED" not in upstream_states(port)
            finally:
                release.set()  # the responder never ran meanwhile; now it may unwind
    assert record.outcome == "disconnected"
    assert record.chunks_sent < len(SLOW.tokens)


def sse_response(router: Router) -> ChatStreamResponse:
    return ChatStreamResponse(
        router,
        InFlight(),
        prepared(router, "openai"),
        summary("http"),
        include_usage=False,
        log_content=False,
    )


async def test_sse_hang_up_before_the_first_token_closes_the_upstream() -> None:
    async with routed("openai") as (upstream, router, port):
        upstream.queue(Scenario(tokens=["late"], delay_s=5))
        sent: list[Message] = []

        async def receive() -> Message:
            await upstream.wait_for_requests(1)  # the upstream has the request: hang up now
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        with anyio.fail_after(2):
            await sse_response(router)({"type": "http"}, receive, send)
        record = upstream.last
        with anyio.fail_after(1):
            await record.ended.wait()
        assert "ESTABLISHED" not in upstream_states(port)
    assert record.outcome == "disconnected"
    assert sent == []  # nothing was answered: no 200 went out before a token


async def test_the_sse_hang_up_watcher_ends_with_the_response() -> None:
    async with routed("openai") as (upstream, router, _):
        upstream.queue(Scenario(tokens=["a", "b"]))
        finished = anyio.Event()
        bodies: list[bytes] = []

        async def receive() -> Message:
            await finished.wait()  # never, unless the watcher outlived the response
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])

        before = len(asyncio.all_tasks())
        with anyio.fail_after(2):
            await sse_response(router)({"type": "http"}, receive, send)
        assert len(asyncio.all_tasks()) == before  # the watcher was cancelled and awaited
    assert b"".join(bodies).endswith(b"data: [DONE]\n\n")


async def test_a_failing_receive_is_raised_not_swallowed() -> None:
    async with routed("openai") as (upstream, router, _):
        upstream.queue(Scenario(tokens=["a"], delay_s=0.05))

        async def receive() -> Message:
            raise RuntimeError("server bug")

        async def send(message: Message) -> None:
            pass

        with pytest.raises(Exception) as caught, anyio.fail_after(2):
            await sse_response(router)({"type": "http"}, receive, send)
        assert "server bug" in repr(caught.value)  # alone, or inside the task group's group
