"""The upstream fault matrix: every fault, every provider, both transports.

Each case is one fault a real provider shows on a bad day, played by the fake
upstream of each provider in its own wire format, and what a client of the
gateway must see for it: a retry (and then the answer) when nothing was sent yet,
a typed error when the failure comes before the first token, and after the first
token a typed in-band error -- ``response.done failed`` on the socket, an
OpenAI-shaped error event and ``[DONE]`` on SSE -- never a silent clean finish and
never a hang. Every case also checks that the fake saw its connection end (no
upstream stream is left running), that the provider key never reaches the
client, and that no log line holds the key or the message content.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import orjson
import pytest
import structlog
import structlog.testing

from tests.fakes import FakeUpstream, Scenario, serve
from tests.gateway.http._support import closed_port
from tests.gateway.ws import _support as ws

pytestmark = pytest.mark.anyio

PROVIDERS = ("openai", "anthropic", "ollama")
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "ollama": "ollama/llama3.2:latest",
}
UPSTREAM_KEY = "sk-upstream-secret-0123456789"
TOKENS = ["Hello", ",", " world", "!"]
PROMPT = "confidential ticket text 7f3a"  # message content: never in a log line
TEXT = "".join(TOKENS)
TIMEOUTS = {"connect_s": 2.0, "first_token_s": 0.6, "between_tokens_s": 0.6, "total_s": 8.0}
RETRY = {"max_attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02, "jitter": 0}


@dataclass(frozen=True)
class Case:
    """A fault and what the client must see.

    ``code`` None means the answer arrives whole (after retries, when ``requests``
    says so); ``before_first_token`` says whether an error can still be a plain HTTP
    error status, or must travel in-band after streamed text.
    """

    name: str
    scenarios: tuple[Scenario, ...] = ()
    code: str | None = None
    status: int | None = None  # the HTTP status of an error before the first token
    before_first_token: bool = True
    requests: int = 1  # how many requests the fake must have seen
    providers: tuple[str, ...] = PROVIDERS
    refused: bool = False  # nothing listens: connection refused
    wrong_key: bool = False  # the gateway holds a key the fake refuses
    overrides: dict[str, Any] = field(default_factory=dict)


def _after_first(**fields: Any) -> Scenario:
    return Scenario(tokens=TOKENS, **fields)


CASES = [
    Case("connection refused", refused=True, code="upstream_unavailable", status=503, requests=0),
    Case(
        "401 bad key",
        wrong_key=True,
        code="upstream_auth_failed",
        status=502,
        providers=("openai", "anthropic"),
    ),
    Case(
        "401 from a proxy",
        (Scenario(status=401),),
        code="upstream_auth_failed",
        status=502,
        providers=("ollama",),
    ),
    # The providers' chat endpoints answer 404 for a model they do not know: the
    # gateway's own code and status for an unknown name, not a generic 400.
    Case("404 unknown model", (Scenario(status=404),), code="model_not_found", status=404),
    Case("429 then ok", (Scenario(status=429, retry_after="0"), Scenario()), requests=2),
    Case("500 then ok", (Scenario(status=500), Scenario()), requests=2),
    Case("502 then ok", (Scenario(status=502), Scenario()), requests=2),
    Case("503 then ok", (Scenario(status=503), Scenario()), requests=2),
    Case(
        "503 persists",
        (Scenario(status=503), Scenario(status=503)),
        code="upstream_unavailable",
        status=503,
        requests=2,
    ),
    Case("529 then ok", (Scenario(status=529), Scenario()), requests=2, providers=("anthropic",)),
    Case(
        "stall before the first byte",
        (Scenario(stall_after=0), Scenario(stall_after=0)),
        code="upstream_timeout",
        status=504,
        requests=2,
    ),
    Case(
        "stall between tokens",
        (_after_first(stall_after=2),),
        code="upstream_timeout",
        before_first_token=False,
    ),
    Case(
        "reset mid-stream",
        (_after_first(reset_after=2),),
        code="upstream_error",
        before_first_token=False,
    ),
    Case(
        "error event mid-stream",
        (_after_first(error_after=2),),
        code="upstream_error",
        before_first_token=False,
        providers=("openai", "ollama"),
    ),
    Case(
        "overloaded_error mid-stream",
        (_after_first(error_after=2),),
        code="upstream_unavailable",
        before_first_token=False,
        providers=("anthropic",),
    ),
    Case(
        "malformed chunk",
        # Paced, so the garbage arrives in a read of its own after the first tokens
        # (in the same read as them, the attempt fails before any event: a retry).
        (_after_first(garbage_after=2, delay_s=0.05),),
        code="upstream_error",
        before_first_token=False,
    ),
    Case(
        "no terminator",
        (_after_first(end_after=4),),
        code="upstream_error",
        before_first_token=False,
    ),
    Case("keep-alive comments and pings", (_after_first(ping=True),)),
]


def _params() -> list[Any]:
    return [
        pytest.param(case, provider, id=f"{provider}-{case.name.replace(' ', '_')}")
        for case in CASES
        for provider in PROVIDERS
        if provider in case.providers
    ]


@contextlib.asynccontextmanager
async def _fake(provider: str, upstream: FakeUpstream) -> AsyncIterator[str]:
    if provider == "openai":
        from tests.fakes.openai import create_app
    elif provider == "anthropic":
        from tests.fakes.anthropic import create_app
    else:
        from tests.fakes.ollama import create_app
    async with serve(create_app(upstream)) as base:
        yield base


def _provider_settings(provider: str, base: str, key: str) -> dict[str, Any]:
    if provider == "openai":
        return {"openai_base_url": f"{base}/v1", "openai_api_key": key}
    if provider == "anthropic":
        return {"anthropic_base_url": base, "anthropic_api_key": key}
    return {"ollama_base_url": base}


@contextlib.asynccontextmanager
async def stack(case: Case, provider: str) -> AsyncIterator[tuple[FakeUpstream, ws.Gateway]]:
    upstream = FakeUpstream(api_key=UPSTREAM_KEY if provider != "ollama" else None)
    upstream.queue(*case.scenarios)
    key = "sk-wrong-key-9876543210" if case.wrong_key else UPSTREAM_KEY
    async with contextlib.AsyncExitStack() as stack:
        if case.refused:
            base = f"http://127.0.0.1:{closed_port()}"
        else:
            base = await stack.enter_async_context(_fake(provider, upstream))
        config = {
            **_provider_settings(provider, base, key),
            "timeouts": TIMEOUTS,
            "retry": RETRY,
            "ws_default_agent": "",
            **case.overrides,
        }
        logs = stack.enter_context(structlog.testing.capture_logs())
        gw = await stack.enter_async_context(ws.gateway(**config))
        yield upstream, gw
        # Across every fault: no provider key and no message content in any log line.
        logged = repr(logs)
        assert logs, "the gateway logged nothing"
        assert UPSTREAM_KEY not in logged
        assert "sk-wrong-key" not in logged
        assert PROMPT not in logged
        assert "world" not in logged  # the answer's text


async def _every_upstream_stream_ended(upstream: FakeUpstream, case: Case) -> None:
    assert len(upstream.requests) == case.requests, [r.outcome for r in upstream.requests]
    with anyio.fail_after(5):
        for record in upstream.requests:
            await record.ended.wait()
    assert upstream.active_streams == 0


def _no_secret(text: str) -> None:
    assert UPSTREAM_KEY not in text
    assert "sk-wrong-key" not in text


# --- HTTP: the OpenAI-compatible SSE stream -------------------------------------------


@pytest.mark.parametrize(("case", "provider"), _params())
async def test_sse(case: Case, provider: str) -> None:
    async with stack(case, provider) as (upstream, gw):
        async with httpx.AsyncClient(base_url=gw.base, timeout=15) as http:
            response = await http.post(
                "/api/v1/chat/completions",
                json={
                    "model": MODELS[provider],
                    "stream": True,
                    "messages": [{"role": "user", "content": PROMPT}],
                },
            )
        _no_secret(response.text)
        if case.code is not None and case.before_first_token:
            assert response.status_code == case.status, response.text
            assert response.json()["error"]["code"] == case.code
        else:
            assert response.status_code == 200, response.text
            events = _sse_data(response.content)
            assert events[-1] == b"[DONE]", events[-3:]
            chunks = [orjson.loads(e) for e in events[:-1]]
            text = "".join(
                c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
            )
            if case.code is None:
                assert text == TEXT
                finishes = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
                assert finishes[-1] == "stop"
            else:
                assert text and TEXT.startswith(text)
                assert "error" in chunks[-1], chunks[-1]
                assert chunks[-1]["error"]["code"] == case.code
        await _every_upstream_stream_ended(upstream, case)


def _sse_data(raw: bytes) -> list[bytes]:
    events = [e for e in raw.split(b"\n\n") if e.strip()]
    assert all(e.startswith(b"data: ") for e in events), events
    return [e.removeprefix(b"data: ") for e in events]


# --- the WebSocket session ------------------------------------------------------------


@pytest.mark.parametrize(("case", "provider"), _params())
async def test_websocket(case: Case, provider: str) -> None:
    async with stack(case, provider) as (upstream, gw):
        client = await gw.open()
        request_id = await client.create(PROMPT, model=MODELS[provider])
        collected = await client.response(request_id, within=15)
        done = collected.done
        _no_secret(orjson.dumps(client.frames).decode())
        if case.code is None:
            assert done["status"] == "completed", done
            assert collected.text == TEXT
        else:
            assert done["status"] == "failed", done
            assert done["error"]["code"] == case.code
            if not case.before_first_token:
                assert collected.text and TEXT.startswith(collected.text)
        await client.aclose()
        await _every_upstream_stream_ended(upstream, case)
