"""Leaving a provider stream early closes the upstream request: the fake sees it hang up.

One contract, so one test per way of leaving, run against every HTTP adapter
(OpenAI and Anthropic through their SDKs, Ollama through httpx) and its fake on
real uvicorn.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gateway.providers.base import Provider, TextDelta, UsageSoFar
from tests.gateway.providers.test_abort import FAKES, SLOW, _request

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("name", sorted(FAKES))
async def test_breaking_out_early_disconnects_upstream_promptly(name: str) -> None:
    got: list[Any] = []
    async with FAKES[name]() as (upstream, provider):
        upstream.queue(SLOW)
        p: Provider = provider
        async with p.stream(_request(name)) as events:
            async for event in events:
                if isinstance(event, UsageSoFar):
                    continue  # Anthropic's input tokens, before the text
                got.append(event)
                if len(got) == 2:
                    break
        record = upstream.last
        with anyio.fail_after(2):
            await record.ended.wait()
    assert got == [TextDelta(" t0"), TextDelta(" t1")]
    assert record.outcome == "disconnected"
    assert record.chunks_sent < len(SLOW.tokens)


@pytest.mark.parametrize("name", sorted(FAKES))
async def test_cancelling_the_consumer_disconnects_upstream(name: str) -> None:
    two_deltas = anyio.Event()
    got: list[Any] = []

    async def consume(provider: Provider) -> None:
        async with provider.stream(_request(name)) as events:
            async for event in events:
                got.append(event)
                if len(got) == 2:
                    two_deltas.set()

    async with FAKES[name]() as (upstream, provider):
        upstream.queue(SLOW)
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, provider)
            with anyio.fail_after(2):
                await two_deltas.wait()
            tg.cancel_scope.cancel()
        record = upstream.last
        with anyio.fail_after(2):
            await record.ended.wait()
    assert record.outcome == "disconnected"
    assert len(got) < len(SLOW.tokens)
