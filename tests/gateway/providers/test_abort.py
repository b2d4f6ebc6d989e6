"""``abort()``: a provider stream cuts its upstream connection off synchronously.

Through each adapter (OpenAI and Anthropic via their SDKs, Ollama via httpx)
against the fakes over real uvicorn on loopback, on plain asyncio and on uvloop
(whose transport sockets refuse ``shutdown``). The upstream must see the close
while the consumer is still inside its ``async with`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import orjson
import pytest

from gateway.errors import UpstreamError
from gateway.providers.base import (
    Abortable,
    ChatMessage,
    ChatRequest,
    Provider,
    StreamEvent,
    TextDelta,
    UsageSoFar,
)
from gateway.upstream.stream import SocketAborter
from tests.fakes import FakeUpstream, Scenario, serve
from tests.gateway.providers.test_anthropic import anthropic_fake
from tests.gateway.providers.test_ollama import ollama
from tests.gateway.providers.test_openai import openai_fake

pytestmark = pytest.mark.anyio

SLOW = Scenario(tokens=[f" t{i}" for i in range(100)], delay_s=0.05)

Fake = Callable[..., contextlib.AbstractAsyncContextManager[tuple[FakeUpstream, Any]]]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "ollama": "llama3.2"}
FAKES: dict[str, Fake] = {"openai": openai_fake, "anthropic": anthropic_fake, "ollama": ollama}


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def _request(provider: str) -> ChatRequest:
    return ChatRequest(model=MODELS[provider], messages=(ChatMessage("user", "Hi"),))


# Both paths behind the one upstream stream interface: the gateway's own transport,
# and httpx2's default transport (its fallback, under a proxy).
TRANSPORTS = pytest.mark.parametrize("transport", ["gateway", "httpx2"])


@TRANSPORTS
@pytest.mark.parametrize("name", sorted(FAKES))
async def test_abort_disconnects_upstream_inside_the_block(name: str, transport: str) -> None:
    async with FAKES[name](upstream_transport=transport) as (upstream, provider):
        upstream.queue(SLOW)
        p: Provider = provider
        async with p.stream(_request(name)) as events:
            assert isinstance(events, Abortable)
            got = [await _next_output(events), await _next_output(events)]
            record = upstream.last
            events.abort()
            events.abort()  # idempotent
            with anyio.fail_after(1):
                await record.ended.wait()
            assert record.outcome == "disconnected"
            # Reading on fails cleanly (after at most what was already buffered).
            with anyio.fail_after(1), pytest.raises(UpstreamError) as caught:
                async for _ in events:
                    pass
            assert caught.value.retryable
        events.abort()  # after the exit: still harmless
    assert got == [TextDelta(" t0"), TextDelta(" t1")]
    assert record.chunks_sent < len(SLOW.tokens)


@TRANSPORTS
@pytest.mark.parametrize("name", sorted(FAKES))
async def test_leaving_the_block_after_abort_raises_nothing(name: str, transport: str) -> None:
    async with FAKES[name](upstream_transport=transport) as (upstream, provider):
        upstream.queue(SLOW)
        p: Provider = provider
        async with p.stream(_request(name)) as events:
            await anext(events)
            assert isinstance(events, Abortable)
            events.abort()
            with anyio.fail_after(1):
                await upstream.last.ended.wait()
        # The provider stays usable: the aborted connection is not reused.
        upstream.queue(Scenario(tokens=["ok"]))
        async with p.stream(_request(name)) as events:
            texts = [e.text async for e in events if isinstance(e, TextDelta)]
    assert texts == ["ok"]
    assert upstream.last.outcome == "completed"


# --- SocketAborter on a plain httpx response ----------------------------------------


@contextlib.asynccontextmanager
async def _ollama_client() -> AsyncIterator[tuple[FakeUpstream, httpx.AsyncClient]]:
    from tests.fakes.ollama import create_app

    upstream = FakeUpstream()
    async with serve(create_app(upstream)) as base, httpx.AsyncClient(base_url=base) as client:
        yield upstream, client


_BODY = orjson.dumps({"model": "llama3.2", "messages": [], "stream": True})


async def test_aborter_leaves_a_closed_response_alone() -> None:
    """Once read to the end, the connection is the pool's: abort must not cut it."""
    async with _ollama_client() as (upstream, client):
        upstream.queue(Scenario(tokens=["a", "b"]))
        async with client.stream("POST", "/api/chat", content=_BODY) as response:
            aborter = SocketAborter(response)
            network = response.extensions["network_stream"]
            async for _ in response.aiter_lines():
                pass
            assert response.is_closed
            aborter.abort()
            # A shut-down socket would read as EOF, i.e. readable.
            assert network.get_extra_info("is_readable") is False
    assert upstream.last.outcome == "completed"


async def test_aborter_cuts_an_open_response() -> None:
    async with _ollama_client() as (upstream, client):
        upstream.queue(SLOW)
        async with client.stream("POST", "/api/chat", content=_BODY) as response:
            network = response.extensions["network_stream"]
            SocketAborter(response).abort()
            assert network.get_extra_info("is_readable") is True
            with anyio.fail_after(1):
                await upstream.last.ended.wait()
    assert upstream.last.outcome == "disconnected"


async def _next_output(events: AsyncIterator[StreamEvent]) -> StreamEvent:
    """The next event but Anthropic's up-front :class:`UsageSoFar`."""
    event = await anext(events)
    while isinstance(event, UsageSoFar):
        event = await anext(events)
    return event
