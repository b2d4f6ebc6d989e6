"""The OpenAI adapter, through the official SDK, against the fake OpenAI over real uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from gateway.errors import (
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from gateway.providers.base import (
    ChatMessage,
    ChatParams,
    ChatRequest,
    Completion,
    Finish,
    ModelInfo,
    TextDelta,
    Usage,
)
from gateway.providers.openai import OpenAIProvider, create
from gateway.settings import load_settings
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
REQUEST = ChatRequest(
    model="gpt-4o-mini",
    messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there")),
)


@contextlib.asynccontextmanager
async def openai_fake(
    *, upstream_key: str | None = KEY, key: str | None = KEY, **overrides: Any
) -> AsyncIterator[tuple[FakeUpstream, OpenAIProvider]]:
    upstream = FakeUpstream(api_key=upstream_key)
    async with serve(create_app(upstream)) as base:
        settings = load_settings(openai_base_url=base + "/v1", openai_api_key=key, **overrides)
        provider = create(settings)
        try:
            yield upstream, provider
        finally:
            await provider.aclose()


async def collect(provider: OpenAIProvider, request: ChatRequest = REQUEST) -> list[Any]:
    async with provider.stream(request) as events:
        return [event async for event in events]


async def test_streams_text_finish_and_usage_exactly() -> None:
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["Hel", "lo", ", ", "wörld", "!"], usage=(11, 5)))
        events = await collect(provider)
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(", "),
        TextDelta("wörld"),
        TextDelta("!"),
        Finish("stop", Usage(11, 5)),
    ]
    assert upstream.last.outcome == "completed"


async def test_sends_chat_completions_request_with_include_usage() -> None:
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=REQUEST.messages,
        params=ChatParams(temperature=0.2, max_tokens=50, top_p=0.9, stop=("END",)),
    )
    async with openai_fake() as (upstream, provider):
        await collect(provider, request)
    record = upstream.last
    assert record.path == "/v1/chat/completions"
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.headers["content-type"] == "application/json"
    assert record.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("native", "normalised"),
    [("length", "length"), ("content_filter", "content_filter"), ("tool_calls", "tool_calls")],
)
async def test_finish_reasons_map(native: str, normalised: str) -> None:
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a"], finish_reason=native))
        events = await collect(provider)
    assert events[-1] == Finish(normalised, Usage(7, 1))  # type: ignore[arg-type]


async def test_ping_comments_are_ignored() -> None:
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], ping=True))
        events = await collect(provider)
    assert events == [TextDelta("a"), TextDelta("b"), TextDelta("c"), Finish("stop", Usage(7, 3))]


async def test_complete_returns_whole_answer() -> None:
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["Hello", " there"], finish_reason="length", usage=(3, 2)))
        completion = await provider.complete(REQUEST)
    assert completion == Completion("Hello there", "length", Usage(3, 2), "gpt-4o-mini")
    assert upstream.last.stream is False
    assert "stream_options" not in upstream.last.body


async def test_list_models_and_probe() -> None:
    async with openai_fake() as (upstream, provider):
        models = await provider.list_models()
        await provider.probe()
    assert models == [ModelInfo("gpt-4o-mini", "openai"), ModelInfo("gpt-4o", "openai")]
    assert [r.path for r in upstream.requests] == ["/v1/models", "/v1/models"]


async def test_retry_after_headers_are_carried() -> None:
    async with openai_fake() as (upstream, provider):
        upstream.queue(
            Scenario(status=429, retry_after="2"), Scenario(status=429, retry_after_ms="150")
        )
        with pytest.raises(UpstreamRateLimited) as seconds:
            await collect(provider)
        with pytest.raises(UpstreamRateLimited) as millis:
            await provider.complete(REQUEST)
    assert seconds.value.retry_after_ms == 2000
    assert millis.value.retry_after_ms == 150


async def test_bad_key_is_auth_failure_without_the_key() -> None:
    bad = "sk-wrong-secret-key-42"
    async with openai_fake(key=bad) as (upstream, provider):
        with pytest.raises(UpstreamAuthFailed) as streamed:
            await collect(provider)
        with pytest.raises(UpstreamAuthFailed) as listed:
            await provider.list_models()
    for caught in (streamed, listed):
        assert caught.value.retryable is False
        assert bad not in str(caught.value)
        assert bad not in repr(caught.value.to_dict())
        assert "Incorrect API key provided: [redacted]." in str(caught.value)
        assert bad[:8] not in str(caught.value) and bad[-4:] not in str(caught.value)
    # The fake really did see the wrong key (and echoed it masked, as OpenAI does).
    assert upstream.requests[0].headers["authorization"] == f"Bearer {bad}"


async def test_base_url_without_key_sends_a_placeholder() -> None:
    async with openai_fake(upstream_key=None, key=None) as (upstream, provider):
        events = await collect(provider)
    assert isinstance(events[-1], Finish)
    assert upstream.last.headers["authorization"] == "Bearer unused"


async def test_mid_stream_error_event_raises_after_the_text_sent() -> None:
    got: list[Any] = []
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], error_after=2))
        with pytest.raises(UpstreamError) as caught:
            async with provider.stream(REQUEST) as events:
                async for event in events:
                    got.append(event)
    assert got == [TextDelta("a"), TextDelta("b")]
    assert caught.value.retryable is True
    assert "server_error" in caught.value.message


async def test_mid_stream_invalid_request_error_is_not_retryable() -> None:
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(error_after=0, error_type="invalid_request_error"))
        with pytest.raises(UpstreamBadRequest) as caught:
            await collect(provider)
    assert caught.value.retryable is False


async def test_connection_reset_mid_stream_is_retryable() -> None:
    got: list[Any] = []
    async with openai_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], reset_after=2))
        with pytest.raises(UpstreamError) as caught:
            async with provider.stream(REQUEST) as events:
                async for event in events:
                    got.append(event)
    assert got == [TextDelta("a"), TextDelta("b")]
    assert caught.value.retryable is True
    assert not isinstance(caught.value, UpstreamTimeout)
    assert upstream.last.outcome == "reset"


async def test_silent_upstream_hits_between_tokens_timeout() -> None:
    async with openai_fake(timeouts={"between_tokens_s": 0.3}) as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b"], stall_after=1))
        with anyio.fail_after(3):
            with pytest.raises(UpstreamTimeout) as caught:
                await collect(provider)
    assert caught.value.retryable is True


async def test_unreachable_upstream_is_retryable_connection_error() -> None:
    with socket_closed_port() as base:
        provider = create(load_settings(openai_base_url=base + "/v1", openai_api_key=KEY))
        try:
            with pytest.raises(UpstreamError) as streamed:
                await collect(provider)
            with pytest.raises(UpstreamError) as probed:
                await provider.probe()
        finally:
            await provider.aclose()
    for caught in (streamed, probed):
        assert caught.value.retryable is True
        assert KEY not in str(caught.value)


@contextlib.contextmanager
def socket_closed_port() -> Any:
    """A loopback URL where nothing listens (the port was bound, then released)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"
