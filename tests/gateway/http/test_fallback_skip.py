"""A fallback that cannot honour a parameter is skipped, never sent it dropped (#11).

Three fake upstreams behind one gateway: OpenAI first, then Anthropic (which has no
``seed``), then Ollama (which has). Through the official ``openai`` SDK; the fakes
record what reached them and the gateway's JSON log says what it skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
import pytest

from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.anthropic import create_app as anthropic_app
from tests.fakes.ollama import create_app as ollama_app
from tests.fakes.openai import create_app as openai_app
from tests.gateway._logs import captured_logs
from tests.gateway.http._support import Gateway, gateway
from tests.gateway.http.test_tools import KEY, MODELS, weather_question

pytestmark = pytest.mark.anyio

OVERLOADED = Scenario(status=503)  # fails before the first token: a fallback may answer


@dataclass
class Chain:
    gw: Gateway
    openai: FakeUpstream
    anthropic: FakeUpstream
    ollama: FakeUpstream


@contextlib.asynccontextmanager
async def chain(primary: str, *fallbacks: str) -> AsyncIterator[Chain]:
    upstreams = {"openai": FakeUpstream(api_key=KEY), "anthropic": FakeUpstream(api_key=KEY)}
    upstreams["ollama"] = FakeUpstream()
    async with (
        serve(openai_app(upstreams["openai"])) as openai_base,
        serve(anthropic_app(upstreams["anthropic"])) as anthropic_base,
        serve(ollama_app(upstreams["ollama"])) as ollama_base,
        gateway(
            retry={"max_attempts": 1},
            openai_base_url=f"{openai_base}/v1",
            openai_api_key=KEY,
            anthropic_base_url=anthropic_base,
            anthropic_api_key=KEY,
            ollama_base_url=ollama_base,
            fallbacks={MODELS[primary]: [MODELS[name] for name in fallbacks]},
        ) as gw,
    ):
        yield Chain(gw, **upstreams)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_fallback_that_cannot_honour_a_parameter_is_skipped(stream: bool) -> None:
    with captured_logs() as logs:
        async with chain("openai", "anthropic", "ollama") as c:
            c.openai.queue(OVERLOADED)
            reply = await c.gw.openai().chat.completions.create(
                model=MODELS["openai"], messages=weather_question(), seed=7, stream=stream
            )
            if isinstance(reply, openai.AsyncStream):
                text = "".join(
                    [chunk.choices[0].delta.content or "" async for chunk in reply if chunk.choices]
                )
            else:
                text = reply.choices[0].message.content or ""
            assert len(c.openai.requests) == 1 and c.openai.last.body["seed"] == 7
            assert c.anthropic.requests == []  # never sent a request with seed dropped
            assert c.ollama.last.body["options"]["seed"] == 7
    assert text == "Hello, world!"
    (skipped,) = [r for r in logs.records() if r.get("event") == "upstream_fallback_skipped"]
    assert (skipped["target"], skipped["param"]) == (MODELS["anthropic"], "seed")


async def test_no_target_can_honour_it_is_unsupported_parameter() -> None:
    async with chain("anthropic", "ollama") as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.gw.openai().chat.completions.create(
                model=MODELS["anthropic"], messages=weather_question(), n=2
            )
        assert c.anthropic.requests == [] and c.ollama.requests == []
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "n")


async def test_the_only_fallbacks_cannot_honour_it_after_the_primary_failed() -> None:
    """The primary could honour it but failed; the rest would drop it: the failure stands."""
    async with chain("openai", "anthropic") as c:
        c.openai.queue(OVERLOADED)
        with pytest.raises(openai.APIStatusError) as caught:
            await c.gw.openai().chat.completions.create(
                model=MODELS["openai"], messages=weather_question(), seed=7
            )
        assert c.anthropic.requests == []
    assert caught.value.status_code == 503
