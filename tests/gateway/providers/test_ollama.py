"""The Ollama adapter against the fake Ollama over real uvicorn on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from gateway.errors import (
    UpstreamBadRequest,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.providers.base import (
    ChatMessage,
    ChatParams,
    ChatRequest,
    Finish,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from gateway.providers.ollama import OllamaProvider, create
from gateway.settings import load_settings
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.ollama import create_app

pytestmark = pytest.mark.anyio

REQUEST = ChatRequest(
    model="llama3.2",
    messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there")),
)


@contextlib.asynccontextmanager
async def ollama(
    *, base_suffix: str = "", **overrides: Any
) -> AsyncIterator[tuple[FakeUpstream, OllamaProvider]]:
    upstream = FakeUpstream()
    async with serve(create_app(upstream)) as base:
        settings = load_settings(ollama_base_url=base + base_suffix, **overrides)
        provider = create(settings)
        try:
            yield upstream, provider
        finally:
            await provider.aclose()


async def collect(provider: OllamaProvider, request: ChatRequest = REQUEST) -> list[Any]:
    async with provider.stream(request) as events:
        return [event async for event in events]


async def test_streams_text_finish_and_usage_exactly() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=["Hel", "lo", ", ", "wörld", "!"], usage=(11, 5)))
        events = await collect(provider)
    assert [e.text for e in events[:-1]] == ["Hel", "lo", ", ", "wörld", "!"]
    assert events[-1] == Finish("stop", Usage(11, 5))
    assert upstream.last.outcome == "completed"


async def test_sends_ollama_request_shape() -> None:
    request = ChatRequest(
        model="llama3.2",
        messages=REQUEST.messages,
        params=ChatParams(temperature=0.2, max_tokens=50, top_p=0.9, stop=("END",)),
    )
    async with ollama() as (upstream, provider):
        await collect(provider, request)
    assert upstream.last.path == "/api/chat"
    assert upstream.last.body == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ],
        "stream": True,
        "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 50, "stop": ["END"]},
    }


async def test_length_finish_reason_maps_to_length() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b"], finish_reason="length"))
        events = await collect(provider)
    assert events[-1].reason == "length"


async def test_empty_content_is_skipped_and_thinking_is_reasoning() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=["", "x", ""], thinking=["hmm", " let me see"]))
        events = await collect(provider)
    assert events[:-1] == [ReasoningDelta("hmm"), ReasoningDelta(" let me see"), TextDelta("x")]


async def test_complete_returns_whole_answer() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=["Hello", " you"], usage=(3, 2), finish_reason="length"))
        completion = await provider.complete(REQUEST)
    assert upstream.last.body["stream"] is False
    assert completion.text == "Hello you"
    assert completion.finish_reason == "length"
    assert completion.usage == Usage(3, 2)
    assert completion.model == "llama3.2"


async def test_list_models_and_probe() -> None:
    async with ollama() as (upstream, provider):
        models = await provider.list_models()
        await provider.probe()
    assert [m.id for m in models] == ["llama3.2:latest", "qwen2.5:0.5b"]
    assert all(m.owned_by == "ollama" for m in models)
    assert [r.path for r in upstream.requests] == ["/api/tags", "/api/tags"]


async def test_probe_of_wrong_base_url_raises() -> None:
    async with ollama(base_suffix="/nope") as (_, provider):
        with pytest.raises(UpstreamError):
            await provider.probe()


async def test_unreachable_upstream_is_retryable_unavailable() -> None:
    settings = load_settings(ollama_base_url="http://127.0.0.1:9")
    provider = create(settings)
    try:
        with pytest.raises(UpstreamUnavailable) as info:
            await collect(provider)
    finally:
        await provider.aclose()
    assert info.value.retryable
    assert "127.0.0.1" not in info.value.message


async def test_unknown_model_is_model_not_found() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(status=404))
        with pytest.raises(UpstreamModelNotFound) as info:
            await collect(provider)
    assert info.value.upstream_status == 404
    assert (info.value.code, info.value.http_status, info.value.param) == (
        "model_not_found",
        404,
        "model",
    )
    assert not info.value.retryable
    assert "model 'llama3.2' not found" in info.value.message


async def test_unavailable_is_retryable_with_retry_after() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(status=503, retry_after="2"))
        with pytest.raises(UpstreamUnavailable) as info:
            await collect(provider)
    assert info.value.retryable
    assert info.value.retry_after_ms == 2000


async def test_rate_limited_carries_retry_after_ms() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(status=429, retry_after_ms="150"))
        with pytest.raises(UpstreamRateLimited) as info:
            await collect(provider)
    assert info.value.retryable
    assert info.value.retry_after_ms == 150


async def test_complete_maps_error_status() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(status=404))
        with pytest.raises(UpstreamBadRequest):
            await provider.complete(REQUEST)


async def test_mid_stream_error_line_raises_after_deltas() -> None:
    received: list[str] = []
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], error_after=2, error_type="out of memory"))
        with pytest.raises(UpstreamError) as info:
            async with provider.stream(REQUEST) as events:
                async for event in events:
                    assert isinstance(event, TextDelta)
                    received.append(event.text)
    assert received == ["a", "b"]
    assert "out of memory" in info.value.message


async def test_reset_mid_stream_raises_retryable() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], reset_after=1))
        with pytest.raises(UpstreamError) as info:
            await collect(provider)
        assert upstream.last.outcome == "reset"
    assert info.value.retryable


async def test_stall_past_read_timeout_raises_upstream_timeout() -> None:
    async with ollama(timeouts={"between_tokens_s": 0.3}) as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], stall_after=1))
        with anyio.fail_after(3), pytest.raises(UpstreamTimeout) as info:
            await collect(provider)
        with anyio.fail_after(2):
            await upstream.last.ended.wait()
    assert info.value.retryable
    assert upstream.last.outcome == "stalled"


async def test_cancelling_before_the_first_chunk_disconnects_upstream() -> None:
    async with ollama() as (upstream, provider):
        upstream.queue(Scenario(tokens=[" slow"] * 10, delay_s=10))
        with anyio.CancelScope() as scope:
            async with provider.stream(REQUEST) as events:
                await upstream.wait_for_requests(1)
                scope.cancel()
                async for _ in events:
                    pass
        assert scope.cancelled_caught
        record = upstream.last
        with anyio.fail_after(2):
            await record.ended.wait()
    assert record.outcome == "disconnected"
    assert record.chunks_sent == 0
