"""An SSE answer that ends early says so: a final OpenAI-shaped error event, then
``data: [DONE]``; and the official ``openai`` SDK raises instead of handing back a
truncated answer as if it were complete. Three ways to end early: the drain deadline,
an upstream failure, the total timeout."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import openai
import orjson
import pytest

from tests.fakes import FakeUpstream, Scenario
from tests.gateway.http._support import Gateway, user
from tests.gateway.http.test_chat import with_openai_fake

pytestmark = pytest.mark.anyio

MODEL = "openai/gpt-4o-mini"
SLOW = Scenario(tokens=[f" t{i}" for i in range(400)], delay_s=0.05)
ERROR_KEYS = {"message", "type", "code", "param"}

Trigger = Callable[[Gateway], Awaitable[None]]


async def _drain(gw: Gateway) -> None:
    gw.services.lifecycle.start_drain()


async def _nothing(gw: Gateway) -> None:
    return None


# (name, scenario for the fake, gateway settings, what to do after the first token,
#  the error code the answer must end with)
CASES: list[tuple[str, Scenario, dict[str, Any], Trigger, str]] = [
    ("drain", SLOW, {"drain_timeout_s": 0.3}, _drain, "server_draining"),
    (
        "upstream error",
        Scenario(tokens=["a", "b", "c", "d"], error_after=2),
        {},
        _nothing,
        "upstream",
    ),
    (
        "upstream reset",
        Scenario(tokens=["a", "b", "c", "d"], reset_after=2),
        {},
        _nothing,
        "upstream",
    ),
    ("total timeout", SLOW, {"timeouts": {"total_s": 0.5}}, _nothing, "upstream_timeout"),
]
IDS = [case[0] for case in CASES]


def _has_text(event: bytes) -> bool:
    payload = event.removeprefix(b"data: ")
    if not payload.startswith(b"{"):
        return False
    choices = orjson.loads(payload).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


@contextlib.asynccontextmanager
async def _cut(
    scenario: Scenario, settings: dict[str, Any]
) -> AsyncIterator[tuple[Gateway, FakeUpstream]]:
    async with with_openai_fake(**settings) as (gw, upstream):
        upstream.queue(scenario)
        yield gw, upstream


@pytest.mark.parametrize(("name", "scenario", "settings", "trigger", "code"), CASES, ids=IDS)
async def test_the_sdk_raises_on_an_answer_cut_short(
    name: str, scenario: Scenario, settings: dict[str, Any], trigger: Trigger, code: str
) -> None:
    texts: list[str] = []
    async with _cut(scenario, settings) as (gw, _):
        stream = await gw.openai().chat.completions.create(
            model=MODEL, messages=user("hello"), stream=True
        )
        with anyio.fail_after(20), pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    if not texts:
                        await trigger(gw)
                    texts.append(delta)
    assert texts, "the answer was cut before its first token"
    assert len(texts) < len(scenario.tokens)
    body = caught.value.body
    assert isinstance(body, dict) and str(body.get("code", "")).startswith(code), body


@pytest.mark.parametrize(("name", "scenario", "settings", "trigger", "code"), CASES, ids=IDS)
async def test_the_stream_ends_with_an_error_event_then_done(
    name: str, scenario: Scenario, settings: dict[str, Any], trigger: Trigger, code: str
) -> None:
    events: list[bytes] = []
    async with (
        _cut(scenario, settings) as (gw, _),
        gw.http() as client,
        client.stream(
            "POST",
            "/api/v1/chat/completions",
            json={"model": MODEL, "messages": user("hello"), "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        buffer = b""
        triggered = False
        with anyio.fail_after(20):
            async for piece in response.aiter_bytes():
                buffer += piece
                *complete, buffer = buffer.split(b"\n\n")
                events.extend(complete)
                if not triggered and any(_has_text(e) for e in complete):
                    triggered = True
                    await trigger(gw)
    assert buffer == b""
    assert events[-1] == b"data: [DONE]", events[-3:]
    error = orjson.loads(events[-2].removeprefix(b"data: "))["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"].startswith(code), error
    assert all(b'"finish_reason":"stop"' not in e for e in events)


async def test_sigterm_cuts_an_sse_answer_at_the_deadline_and_the_sdk_raises() -> None:
    """The real command: SIGTERM with an answer in flight; it ends with an error the SDK
    raises, and the process exits within drain timeout + uvicorn's wait."""
    import signal
    import time

    from gateway.server import GRACEFUL_SHUTDOWN_S
    from tests.gateway.test_cli import free_port, serving

    port = free_port()
    env = {"GATEWAY_DEMO_TOKEN_DELAY_MS": "100", "GATEWAY_DRAIN_TIMEOUT_S": "1"}
    async with serving(port, **env) as (process, _):
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/api/v1", api_key="unused", max_retries=0
        )
        async with client:
            stream = await client.chat.completions.create(
                model="demo/lorem", messages=user("x"), max_tokens=500, stream=True
            )
            texts: list[str] = []
            with pytest.raises(openai.APIError) as caught:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        if not texts:
                            signalled = time.monotonic()
                            process.send_signal(signal.SIGTERM)
                        texts.append(chunk.choices[0].delta.content)
        with anyio.fail_after(1 + GRACEFUL_SHUTDOWN_S + 10):
            assert await process.wait() == 0
        assert time.monotonic() - signalled < 1 + GRACEFUL_SHUTDOWN_S + 10
    assert 0 < len(texts) < 500
    body = caught.value.body
    assert isinstance(body, dict) and body.get("code") == "server_draining", body
