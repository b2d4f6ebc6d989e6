"""The Anthropic adapter, through the official SDK, against the fake Anthropic over real uvicorn."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from gateway.errors import (
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicProvider, create
from gateway.providers.base import (
    ChatMessage,
    ChatParams,
    ChatRequest,
    Completion,
    Finish,
    ModelInfo,
    ReasoningDelta,
    TextDelta,
    Usage,
    UsageSoFar,
)
from gateway.settings import load_settings
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.anthropic import create_app

pytestmark = pytest.mark.anyio

KEY = "sk-ant-test-0123456789"
REQUEST = ChatRequest(
    model="claude-haiku-4-5",
    messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there")),
)


@contextlib.asynccontextmanager
async def anthropic_fake(
    *, upstream_key: str | None = KEY, key: str | None = KEY, **overrides: Any
) -> AsyncIterator[tuple[FakeUpstream, AnthropicProvider]]:
    upstream = FakeUpstream(api_key=upstream_key)
    async with serve(create_app(upstream)) as base:
        settings = load_settings(anthropic_base_url=base, anthropic_api_key=key, **overrides)
        provider = create(settings)
        try:
            yield upstream, provider
        finally:
            await provider.aclose()


async def collect(provider: AnthropicProvider, request: ChatRequest = REQUEST) -> list[Any]:
    async with provider.stream(request) as events:
        return [event async for event in events]


async def test_streams_text_finish_and_usage_exactly() -> None:
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["Hel", "lo", ", ", "wörld", "!"], usage=(11, 5)))
        events = await collect(provider)
    assert events == [
        UsageSoFar(Usage(11, None)),  # message_start's input tokens, before the text
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(", "),
        TextDelta("wörld"),
        TextDelta("!"),
        Finish("stop", Usage(11, 5)),
    ]
    assert upstream.last.outcome == "completed"


async def test_system_lifted_and_max_tokens_defaulted() -> None:
    request = ChatRequest(
        model="claude-haiku-4-5",
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage("system", "Answer in English."),
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", "Hello!"),
            ChatMessage("user", "Bye"),
        ),
    )
    async with anthropic_fake() as (upstream, provider):
        await collect(provider, request)
    record = upstream.last
    assert record.path == "/v1/messages"
    assert record.headers.get("x-api-key") == KEY or record.headers["authorization"] == (
        f"Bearer {KEY}"
    )
    assert record.headers["anthropic-version"]
    assert record.headers["content-type"] == "application/json"
    assert record.body == {
        "model": "claude-haiku-4-5",
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ],
        "max_tokens": DEFAULT_MAX_TOKENS,
        "stream": True,
    }


async def test_params_map_to_messages_fields() -> None:
    request = ChatRequest(
        model="claude-haiku-4-5",
        messages=(ChatMessage("user", "Hi"),),
        params=ChatParams(temperature=0.3, max_tokens=64, top_p=0.8, stop=("END", "STOP")),
    )
    async with anthropic_fake() as (upstream, provider):
        await collect(provider, request)
    body = upstream.last.body
    assert "system" not in body
    assert body["max_tokens"] == 64
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.8
    assert body["stop_sequences"] == ["END", "STOP"]


@pytest.mark.parametrize(
    ("native", "normalised"),
    [
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons_map(native: str, normalised: str) -> None:
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a"], finish_reason=native))
        events = await collect(provider)
    assert events[-1] == Finish(normalised, Usage(7, 1))  # type: ignore[arg-type]


async def test_pings_are_skipped_and_thinking_deltas_are_reasoning() -> None:
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b"], ping=True, thinking=["hmm", "..."]))
        events = await collect(provider)
    assert events == [
        UsageSoFar(Usage(7, None)),
        ReasoningDelta("hmm"),
        ReasoningDelta("..."),
        TextDelta("a"),
        TextDelta("b"),
        Finish("stop", Usage(7, 2)),
    ]


async def test_the_max_tokens_sent_when_a_request_sets_none_is_a_setting() -> None:
    # Anthropic requires max_tokens; a request without one must not be cut at a cap
    # the operator cannot see or change.
    async with anthropic_fake(anthropic_default_max_tokens=32000) as (upstream, provider):
        upstream.queue(Scenario(tokens=["a"]), Scenario(tokens=["b"]))
        await collect(provider)
        await provider.complete(REQUEST)
    assert [r.body["max_tokens"] for r in upstream.requests] == [32000, 32000]


async def test_complete_returns_whole_answer() -> None:
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(
            Scenario(tokens=["Hello", " there"], finish_reason="max_tokens", usage=(3, 2))
        )
        completion = await provider.complete(REQUEST)
    assert completion == Completion("Hello there", "length", Usage(3, 2), "claude-haiku-4-5")
    assert upstream.last.stream is False
    assert upstream.last.body["system"] == "Be brief."
    assert upstream.last.body["max_tokens"] == DEFAULT_MAX_TOKENS


async def test_list_models_and_probe() -> None:
    async with anthropic_fake() as (upstream, provider):
        models = await provider.list_models()
        await provider.probe()
    assert models == [
        ModelInfo("claude-sonnet-4-5", "anthropic", "Claude Sonnet 4 5"),
        ModelInfo("claude-haiku-4-5", "anthropic", "Claude Haiku 4 5"),
    ]
    assert [r.path for r in upstream.requests] == ["/v1/models", "/v1/models"]


async def test_retry_after_headers_are_carried() -> None:
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(
            Scenario(status=429, retry_after="3"), Scenario(status=529, retry_after_ms="250")
        )
        with pytest.raises(UpstreamRateLimited) as seconds:
            await collect(provider)
        with pytest.raises(UpstreamUnavailable) as millis:
            await provider.complete(REQUEST)
    assert seconds.value.retry_after_ms == 3000
    assert millis.value.retry_after_ms == 250


async def test_bad_key_is_auth_failure_without_the_key() -> None:
    bad = "sk-ant-wrong-secret-99"
    async with anthropic_fake(key=bad) as (upstream, provider):
        with pytest.raises(UpstreamAuthFailed) as streamed:
            await collect(provider)
        with pytest.raises(UpstreamAuthFailed) as completed:
            await provider.complete(REQUEST)
    for caught in (streamed, completed):
        assert caught.value.retryable is False
        assert bad not in str(caught.value)
        assert bad not in repr(caught.value.to_dict())
        assert "invalid x-api-key" in str(caught.value)
    assert bad in repr(upstream.requests[0].headers)  # the fake really saw the wrong key


async def test_overloaded_error_event_mid_stream_is_retryable_unavailable() -> None:
    got: list[Any] = []
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], error_after=2))
        with pytest.raises(UpstreamUnavailable) as caught:
            async with provider.stream(REQUEST) as events:
                async for event in events:
                    got.append(event)
    assert got == [UsageSoFar(Usage(7, None)), TextDelta("a"), TextDelta("b")]
    assert caught.value.retryable is True
    assert "overloaded_error" in caught.value.message


async def test_invalid_request_error_event_is_not_retryable() -> None:
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(Scenario(error_after=0, error_type="invalid_request_error"))
        with pytest.raises(UpstreamBadRequest) as caught:
            await collect(provider)
    assert caught.value.retryable is False


async def test_connection_reset_mid_stream_is_retryable() -> None:
    got: list[Any] = []
    async with anthropic_fake() as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b", "c"], reset_after=1))
        with pytest.raises(UpstreamError) as caught:
            async with provider.stream(REQUEST) as events:
                async for event in events:
                    got.append(event)
    assert got == [UsageSoFar(Usage(7, None)), TextDelta("a")]
    assert caught.value.retryable is True
    assert upstream.last.outcome == "reset"


async def test_silent_upstream_hits_between_tokens_timeout() -> None:
    async with anthropic_fake(timeouts={"between_tokens_s": 0.3}) as (upstream, provider):
        upstream.queue(Scenario(tokens=["a", "b"], stall_after=1))
        with anyio.fail_after(3), pytest.raises(UpstreamTimeout) as caught:
            await collect(provider)
    assert caught.value.retryable is True


async def test_unreachable_upstream_is_retryable_connection_error() -> None:
    with closed_port() as base:
        provider = create(load_settings(anthropic_base_url=base, anthropic_api_key=KEY))
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
def closed_port() -> Iterator[str]:
    """A loopback URL where nothing listens (the port was bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"
