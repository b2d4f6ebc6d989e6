"""Nothing outlives its purpose: counts return to zero, no task is left behind."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from sessions import FinishInfo, Response
from tests.sessions._support import ListSink
from tests.sessions.conftest import ManagerFactory

pytestmark = pytest.mark.anyio


async def test_two_hundred_sessions_leave_nothing_behind(new_manager: ManagerFactory) -> None:
    baseline = len(asyncio.all_tasks())
    ended = 0

    async def produce(response: Response) -> FinishInfo:
        nonlocal ended
        try:
            response.emit_delta("hello")
            if response.request_id.endswith("quick"):
                return FinishInfo()
            await anyio.sleep_forever()
            raise AssertionError("unreachable")
        finally:
            ended += 1

    async with new_manager(resume_window_s=0.05).running() as manager:
        # The manager's expiry task, and a shared backend's own tasks.
        own_tasks = len(asyncio.all_tasks()) - baseline
        for i in range(200):
            sink = ListSink()
            session = manager.open_session(f"user{i % 7}", sink)
            quick, _ = await manager.create_response(session, f"{i}-quick", produce=produce)
            slow, _ = await manager.create_response(session, f"{i}-slow", produce=produce)
            await manager.create_response(session, f"{i}-hung", produce=produce)
            await sink.wait_done(quick.id)
            if i % 2:
                await manager.cancel(session, response_id=slow.id)
            manager.close_session(session)  # `hung` (and maybe `slow`) run on detached
        assert manager.sessions == 0
        with anyio.fail_after(5):
            await manager.wait_for(
                lambda: manager.retained_responses == 0 and manager.producer_tasks == 0
            )
        assert manager.active_responses == 0
        assert ended == 600
        # No task of any response is left. Besides the test only the manager's (and its
        # backend's) own tasks remain: exactly so in memory; redis-py may briefly run a
        # connection task of its own.
        names = [t.get_name() for t in asyncio.all_tasks()]
        assert not [n for n in names if n.startswith(("response ", "mirror "))]
        if not manager.backend.shared:
            assert len(names) == baseline + own_tasks
    assert len(asyncio.all_tasks()) == baseline
