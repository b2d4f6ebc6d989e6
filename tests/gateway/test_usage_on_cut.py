"""What an answer ended early says about its tokens: what the provider told before the cut.

Anthropic tells the input tokens up front (``message_start``): a response cancelled
or failed after its first token reports them, with the output count ``null`` (the
provider counts it only at the end). OpenAI (usage in the last chunk only) and
Ollama (counts on the last line) have told nothing by then: both counts are
``null``, never 0. Over a real WebSocket against the fake upstreams; the summary
log line says the same. The SSE side: a server-side stop (the total time limit)
ends the answer in-band and still logs the known input tokens.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from tests.fakes import Scenario
from tests.gateway._logs import PRODUCTION_LOGGING, Logs, captured_logs
from tests.gateway.ws._support import Gateway, fake_upstream, gateway

pytestmark = pytest.mark.anyio

INPUT_TOKENS = 23
SLOW = Scenario(tokens=[f" t{i}" for i in range(500)], delay_s=0.01, usage=(INPUT_TOKENS, 500))
MODELS = {
    "anthropic": "anthropic/claude-haiku-4-5",
    "openai": "openai/gpt-4o-mini",
    "ollama": "ollama/llama3.2:latest",
}
# What each provider has told of the usage three tokens into the answer.
KNOWN = {
    "anthropic": {"input_tokens": INPUT_TOKENS, "output_tokens": None},
    "openai": {"input_tokens": None, "output_tokens": None},
    "ollama": {"input_tokens": None, "output_tokens": None},
}


def _summary(logs: Logs) -> dict[str, Any]:
    (line,) = [r for r in logs.records() if r.get("event") == "chat.request"]
    return line


async def _all_ended(gw: Gateway) -> None:
    """Every producer has unwound (its summary line is written on the way out)."""
    with anyio.fail_after(3):
        await gw.manager.wait_for(lambda: gw.manager.producer_tasks == 0)


@pytest.mark.parametrize("provider", sorted(KNOWN))
async def test_cancel_mid_stream_reports_the_usage_known_before_the_cut(provider: str) -> None:
    with captured_logs() as logs:
        async with (
            fake_upstream(provider) as (upstream, overrides),
            gateway(uvicorn=PRODUCTION_LOGGING, **overrides) as gw,
        ):
            upstream.queue(SLOW)
            client = await gw.open()
            await client.create("hi", model=MODELS[provider])
            created = await client.next("response.created")
            for _ in range(3):
                await client.next("response.output_text.delta")
            await client.send("response.cancel", response_id=created["response_id"])
            frames = await client.frames_of(created["response_id"])
            done = frames[-1]
            (record,) = upstream.requests
            with anyio.fail_after(2):
                await record.ended.wait()
            await _all_ended(gw)
            await client.aclose()
    assert record.outcome == "disconnected"  # really cut: the provider never finished
    assert (done["type"], done["status"], done["reason"]) == (
        "response.done",
        "cancelled",
        "client_cancelled",
    )
    assert done["usage"] == KNOWN[provider]
    summary = _summary(logs)
    assert summary["status"] == "cancelled"
    assert summary["agent"] == "assistant"  # the socket's default, named in the log too
    assert (summary["input_tokens"], summary["output_tokens"]) == tuple(KNOWN[provider].values())


async def test_an_upstream_failure_mid_stream_reports_the_input_tokens() -> None:
    with captured_logs() as logs:
        async with (
            fake_upstream("anthropic") as (upstream, overrides),
            gateway(uvicorn=PRODUCTION_LOGGING, retry={"max_attempts": 1}, **overrides) as gw,
        ):
            upstream.queue(Scenario(tokens=["a", "b", "c"], error_after=2, usage=(31, 3)))
            client = await gw.open()
            rid = await client.create("hi", model=MODELS["anthropic"])
            answer = await client.response(rid)
            await _all_ended(gw)
            await client.aclose()
    assert answer.text == "ab"
    assert answer.done["status"] == "failed"
    assert answer.done["error"]["code"] == "upstream_unavailable"  # overloaded_error
    assert answer.done["usage"] == {"input_tokens": 31, "output_tokens": None}
    summary = _summary(logs)
    assert (summary["status"], summary["input_tokens"], summary["output_tokens"]) == (
        "error",
        31,
        None,
    )


async def test_a_finished_answer_reports_the_finish_usage() -> None:
    async with (
        fake_upstream("anthropic") as (upstream, overrides),
        gateway(**overrides) as gw,
    ):
        upstream.queue(Scenario(tokens=["a", "b"], usage=(12, 2)))
        client = await gw.open()
        rid = await client.create("hi", model=MODELS["anthropic"])
        answer = await client.response(rid)
        await client.aclose()
    assert answer.done["status"] == "completed"
    assert answer.done["usage"] == {"input_tokens": 12, "output_tokens": 2}


# A server-side stop of an SSE answer after its first token: (settings, what to do then,
# the in-band error code).
SERVER_STOPS = {
    "total timeout": ({"timeouts": {"total_s": 0.5}}, False, "upstream_timeout"),
    "drain": ({"drain_timeout_s": 0.3}, True, "server_draining"),
}


@pytest.mark.parametrize("stop", sorted(SERVER_STOPS))
async def test_sse_stopped_by_the_server_logs_the_known_input_tokens(stop: str) -> None:
    settings, drain, code = SERVER_STOPS[stop]
    with captured_logs() as logs:
        async with (
            fake_upstream("anthropic") as (upstream, overrides),
            gateway(uvicorn=PRODUCTION_LOGGING, **settings, **overrides) as gw,
        ):
            upstream.queue(SLOW)
            async with (
                httpx.AsyncClient(base_url=gw.base, timeout=5) as http,
                http.stream(
                    "POST",
                    "/api/v1/chat/completions",
                    json={
                        "model": MODELS["anthropic"],
                        "messages": [{"role": "user", "content": "hi"}],
                        "stream": True,
                    },
                ) as response,
            ):
                assert response.status_code == 200
                lines: list[str] = []
                async for line in response.aiter_lines():
                    if line and not lines and drain:
                        gw.services.lifecycle.start_drain()
                    if line:
                        lines.append(line)
            (record,) = upstream.requests
            with anyio.fail_after(2):
                await record.ended.wait()
    assert lines[-1] == "data: [DONE]"
    assert f'"{code}"' in lines[-2]  # the in-band error event
    assert record.outcome == "disconnected"
    summary = _summary(logs)
    assert summary["error_code"] == code
    assert (summary["input_tokens"], summary["output_tokens"]) == (INPUT_TOKENS, None)
