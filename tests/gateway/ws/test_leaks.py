"""Hundreds of sessions later: no tasks, upstream streams or session state left behind."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from tests.fakes import Scenario
from tests.gateway.ws._support import Gateway, fake_upstream, gateway

pytestmark = pytest.mark.anyio

SESSIONS = 200


async def one_session(gw: Gateway, index: int) -> None:
    client = await gw.open()
    got = await client.response(await client.create(f"hello {index}", model="openai/gpt-4o-mini"))
    assert got.text == "Hello, world!"
    await client.aclose()


async def settled(gw: Gateway) -> None:
    """Every socket gone from the registry and every producer task ended."""
    assert gw.services.sockets is not None
    with anyio.fail_after(5):
        await gw.services.sockets.wait_empty()
        await gw.manager.wait_idle()
        await gw.manager.wait_for(lambda: gw.manager.retained_responses == 0)


async def test_two_hundred_sessions_leave_nothing_behind() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.default = Scenario(tokens=["Hello", ",", " world", "!"])
        # No resume window: finished responses are forgotten at once.
        async with gateway(resume_window_ms=0, **overrides) as gw:
            await one_session(gw, -1)  # warm-up: connection pools, lazy imports
            await settled(gw)
            tasks_before = len(asyncio.all_tasks())

            for batch in range(SESSIONS // 20):
                async with anyio.create_task_group() as tg:
                    for index in range(20):
                        tg.start_soon(one_session, gw, batch * 20 + index)
            await settled(gw)

            assert len(upstream.requests) == SESSIONS + 1
            assert upstream.active_streams == 0
            assert all(r.outcome == "completed" for r in upstream.requests)
            assert gw.manager.sessions == 0
            assert gw.manager.active_responses == 0
            assert gw.manager.producer_tasks == 0
            assert gw.manager.retained_responses == 0
            assert len(asyncio.all_tasks()) <= tasks_before


async def test_abandoned_sockets_leave_nothing_behind() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.default = Scenario(tokens=[f" t{i}" for i in range(1000)], delay_s=0.01)
        async with gateway(resume_window_ms=0, **overrides) as gw:
            for _ in range(20):
                client = await gw.open()
                await client.create("x", model="openai/gpt-4o-mini")
                await client.next("response.output_text.delta")
                await client.aclose()  # mid-answer, no cancel
            await settled(gw)
            with anyio.fail_after(2):
                for record in upstream.requests:
                    await record.ended.wait()
            assert upstream.active_streams == 0
            assert all(r.outcome == "disconnected" for r in upstream.requests)
            assert gw.manager.sessions == 0
