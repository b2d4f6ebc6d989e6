"""The router end to end: real Ollama adapter, fake Ollama on real uvicorn over loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from gateway.errors import UpstreamUnavailable
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatMessage, ChatRequest, Finish, StreamEvent, TextDelta
from gateway.router import Router, Target
from gateway.settings import load_settings
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.ollama import create_app

pytestmark = pytest.mark.anyio

REQUEST = ChatRequest("primary", (ChatMessage("user", "Hi"),))
MAIN = Target("ollama", "main:1")
BACKUP = Target("ollama", "backup:1")


@dataclass
class Gateway:
    upstream: FakeUpstream
    router: Router
    sleeps: list[float]


@contextlib.asynccontextmanager
async def gateway(**overrides: Any) -> AsyncIterator[Gateway]:
    upstream = FakeUpstream()
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)  # no waiting: the delay asked for is what is checked

    async with serve(create_app(upstream)) as base:
        settings = load_settings(
            ollama_base_url=base,
            aliases={"primary": "ollama/main:1"},
            fallbacks={"primary": ["ollama/backup:1"]},
            **overrides,
        )
        registry = ProviderRegistry(settings)
        try:
            yield Gateway(upstream, Router(settings, registry, sleep=sleep), sleeps)
        finally:
            await registry.aclose()


async def collect(router: Router) -> tuple[Target, list[StreamEvent]]:
    async with router.stream(router.resolve("primary"), REQUEST) as stream:
        return stream.target, [event async for event in stream]


async def test_503_with_retry_after_is_retried_on_the_same_target() -> None:
    async with gateway() as gw:
        gw.upstream.queue(Scenario(status=503, retry_after="1"), Scenario(tokens=["a", "b"]))
        target, events = await collect(gw.router)

    assert target == MAIN
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b"]
    assert isinstance(events[-1], Finish)
    assert [r.body["model"] for r in gw.upstream.requests] == ["main:1", "main:1"]
    assert gw.sleeps == [1.0]
    assert gw.upstream.requests[1].outcome == "completed"


async def test_retry_after_above_cap_falls_back_to_the_next_target() -> None:
    async with gateway(retry={"max_retry_after_s": 5}) as gw:
        gw.upstream.queue(Scenario(status=503, retry_after="30"), Scenario(tokens=["x"]))
        target, events = await collect(gw.router)

    assert target == BACKUP
    assert events[0] == TextDelta("x")
    assert [r.body["model"] for r in gw.upstream.requests] == ["main:1", "backup:1"]
    assert gw.sleeps == []


async def test_every_target_failing_raises_the_upstream_error() -> None:
    async with gateway(retry={"max_attempts": 2}) as gw:
        gw.upstream.default = Scenario(status=503)
        with pytest.raises(UpstreamUnavailable):
            await collect(gw.router)

    assert [r.body["model"] for r in gw.upstream.requests] == [
        "main:1",
        "main:1",
        "backup:1",
        "backup:1",
    ]
    assert len(gw.sleeps) == 2


async def test_first_token_timeout_falls_back_over_http() -> None:
    async with gateway(retry={"max_attempts": 1}, timeouts={"first_token_s": 0.2}) as gw:
        gw.upstream.queue(Scenario(stall_after=0), Scenario(tokens=["late", "r"]))
        with anyio.fail_after(5):
            target, events = await collect(gw.router)

    assert target == BACKUP
    assert events[0] == TextDelta("late")
    assert [r.body["model"] for r in gw.upstream.requests] == ["main:1", "backup:1"]


async def test_leaving_after_the_first_token_disconnects_upstream() -> None:
    async with gateway() as gw:
        gw.upstream.queue(Scenario(tokens=["t"] * 200, delay_s=0.01))
        async with gw.router.stream(gw.router.resolve("primary"), REQUEST) as stream:
            async for event in stream:
                assert event == TextDelta("t")
                break
        record = gw.upstream.requests[0]
        with anyio.fail_after(2):
            await record.ended.wait()

    assert record.outcome == "disconnected"
    assert record.chunks_sent < 200
    assert len(gw.upstream.requests) == 1


async def test_cancelling_the_consumer_disconnects_upstream() -> None:
    async with gateway() as gw:
        gw.upstream.queue(Scenario(tokens=["t"] * 200, delay_s=0.01))
        first = anyio.Event()

        async def consume() -> None:
            async with gw.router.stream(gw.router.resolve("primary"), REQUEST) as stream:
                async for _ in stream:
                    first.set()

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await first.wait()
                tg.cancel_scope.cancel()
            record = gw.upstream.requests[0]
            await record.ended.wait()

    assert record.outcome == "disconnected"
    assert record.chunks_sent < 200
