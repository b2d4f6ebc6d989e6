"""The built-in demo provider: exact, deterministic, offline, and stoppable."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gateway.errors import ModelNotFound
from gateway.providers.base import ChatMessage, ChatParams, ChatRequest, Finish, TextDelta, Usage
from gateway.providers.demo import DemoProvider, create
from gateway.settings import load_settings

pytestmark = pytest.mark.anyio


def demo(delay_ms: float = 0) -> DemoProvider:
    return create(load_settings(demo_token_delay_ms=delay_ms))


def request(model: str, text: str = "hello", **params: Any) -> ChatRequest:
    messages = (
        ChatMessage("system", "You are terse."),
        ChatMessage("user", "an older message"),
        ChatMessage("assistant", "ok"),
        ChatMessage("user", text),
    )
    return ChatRequest(model, messages, ChatParams(**params))


async def collect(provider: DemoProvider, req: ChatRequest) -> list[Any]:
    async with provider.stream(req) as events:
        return [event async for event in events]


@pytest.mark.parametrize(
    "text", ["Hello, world!", "  leading and  double  spaces\tand tab\n", "one", ""]
)
async def test_echo_streams_last_user_message_exactly(text: str) -> None:
    events = await collect(demo(), request("echo", text))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == text
    assert len(deltas) == len(text.split()) + (1 if text.endswith((" ", "\n")) else 0)
    assert events[-1] == Finish("stop", Usage(7 + len(text.split()), len(deltas)))


async def test_echo_is_word_by_word() -> None:
    events = await collect(demo(), request("echo", "Hello big world"))
    assert [e.text for e in events[:-1]] == ["Hello", " big", " world"]


async def test_lorem_default_count_stops() -> None:
    events = await collect(demo(), request("lorem"))
    assert len(events) == 64 + 1
    assert events[0] == TextDelta("Lorem")
    assert events[-1].reason == "stop"
    assert events[-1].usage.output_tokens == 64
    words = "".join(e.text for e in events[:-1]).split()
    assert len(words) == 64
    assert all(w.rstrip(",.").isalpha() for w in words)


async def test_lorem_max_tokens_cuts_with_length() -> None:
    events = await collect(demo(), request("lorem", max_tokens=5))
    assert "".join(e.text for e in events[:-1]) == "Lorem ipsum dolor sit amet,"
    assert events[-1].reason == "length"
    assert events[-1].usage == Usage(8, 5)


@pytest.mark.parametrize(
    ("params", "text", "reason"),
    [
        ({"stop": ("dolor",)}, "Lorem ipsum ", "stop"),  # before the stop sequence
        ({"stop": ("sum", "psu")}, "Lorem i", "stop"),  # the earliest of several, mid-token
        ({"stop": ("nowhere",), "max_tokens": 2}, "Lorem ipsum", "length"),
    ],
)
async def test_stop_and_max_tokens_cut_every_demo_answer(
    params: dict[str, Any], text: str, reason: str
) -> None:
    # Taken and honoured like a model's, never ignored: echo had no cut of its own.
    for model, prompt in (("lorem", "x"), ("echo", "Lorem ipsum dolor sit amet")):
        events = await collect(demo(), request(model, prompt, **params))
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text, model
        assert isinstance(events[-1], Finish) and events[-1].reason == reason, model


async def test_lorem_is_deterministic() -> None:
    provider = demo()
    first = await collect(provider, request("lorem", max_tokens=100))
    second = await collect(provider, request("lorem", max_tokens=100))
    assert first == second


async def test_triage_answers_ticket_sensibly() -> None:
    ticket = "I cannot connect to the VPN from home since this morning. Please help."
    completion = await demo().complete(request("triage", ticket))
    assert completion.text.startswith(
        "Summary: The user reports: I cannot connect to the VPN from home since this morning.\n"
    )
    assert "Category: network\n" in completion.text
    assert "Priority: P2 high" in completion.text
    streamed = await collect(demo(), request("triage", ticket))
    assert "".join(e.text for e in streamed[:-1]) == completion.text


@pytest.mark.parametrize(
    ("ticket", "category", "priority"),
    [
        ("Got a phishing email, I clicked the link", "security", "P3 medium"),
        ("The whole site is down, outage for everyone", "other", "P1 critical"),
        ("How do I change my password?", "access", "P4 low"),
        ("My laptop battery drains fast", "hardware", "P3 medium"),
    ],
)
async def test_triage_rules(ticket: str, category: str, priority: str) -> None:
    text = (await demo().complete(request("triage", ticket))).text
    assert f"Category: {category}\n" in text
    assert f"Priority: {priority}" in text


async def test_complete_matches_stream() -> None:
    completion = await demo().complete(request("echo", "same text"))
    assert completion.text == "same text"
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(9, 2)
    assert completion.model == "echo"


async def test_unknown_model_raises_model_not_found() -> None:
    with pytest.raises(ModelNotFound) as info:
        await collect(demo(), request("gpt-9"))
    assert info.value.param == "model"
    with pytest.raises(ModelNotFound):
        await demo().complete(request("gpt-9"))


async def test_list_models_says_demo() -> None:
    models = await demo().list_models()
    assert [m.id for m in models] == ["echo", "lorem", "triage", "tools"]
    assert all(m.owned_by == "demo" and "demo" in (m.description or "").lower() for m in models)
    await demo().probe()


async def test_pace_spaces_tokens_apart() -> None:
    provider = demo(delay_ms=20)
    started = anyio.current_time()
    events = await collect(provider, request("lorem", max_tokens=6))
    elapsed = anyio.current_time() - started
    assert len(events) == 7
    assert elapsed >= 5 * 0.02 * 0.9


async def test_zero_pace_never_sleeps() -> None:
    # 2,000 tokens at even 5 ms each would blow this generous bound many times over.
    with anyio.fail_after(8):
        events = await collect(demo(delay_ms=0), request("lorem", max_tokens=2_000))
    assert len(events) == 2_001


async def test_leaving_early_closes_the_generator() -> None:
    provider = demo(delay_ms=0)
    async with provider.stream(request("lorem")) as events:
        async for _ in events:
            break
    # A closed async generator drops its frame: nothing of it can run any more.
    assert events.ag_frame is None  # type: ignore[attr-defined]


async def test_cancelling_mid_pause_closes_the_generator() -> None:
    provider = demo(delay_ms=10_000)
    received = []
    with anyio.move_on_after(0.2) as scope:
        async with provider.stream(request("lorem")) as events:
            async for event in events:
                received.append(event)
    assert scope.cancelled_caught
    assert received == [TextDelta("Lorem")]
    assert events.ag_frame is None  # type: ignore[attr-defined]


async def test_registry_default_settings_use_demo() -> None:
    provider = create(load_settings())
    assert provider.name == "demo"
