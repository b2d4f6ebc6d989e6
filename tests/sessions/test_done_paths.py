"""Every way a response ends emits exactly one Done, and nothing follows it."""

from __future__ import annotations

import anyio
import pytest

from sessions import (
    Created,
    Delta,
    Done,
    Draining,
    FinishInfo,
    Reason,
    ResponseMeta,
    Status,
)
from tests.sessions._support import ListSink, Script, wait
from tests.sessions.conftest import ManagerFactory

pytestmark = pytest.mark.anyio

META = ResponseMeta(model="gpt-x", provider="openai", agent="assistant")


async def test_completed_response_has_exact_seqs_and_usage(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=0).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, created_new = await manager.create_response(
            session, "req-1", produce=script, meta=META
        )
        assert created_new
        assert sink.events == [response.created]
        assert response.created == Created(response.id, "req-1", manager.epoch, META, seq=0)
        script.feed("Hel", "lo", FinishInfo("stop", input_tokens=7, output_tokens=2))
        done = await sink.wait_done(response.id)
        assert sink.seqs(response.id) == [0, 1, 2, 3]
        assert sink.texts(response.id) == ["Hel", "lo"]
        assert done == Done(response.id, "req-1", 3, Status.COMPLETED, None, "stop", 7, 2)
        assert response.status is Status.COMPLETED
        await wait(script.exited)
        response.emit_delta("late")  # after Done: ignored
        assert sink.seqs(response.id) == [0, 1, 2, 3]
        await manager.wait_idle()
        assert manager.active_responses == 0


async def test_producer_may_report_incomplete_max_tokens(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        script.feed("a", FinishInfo("length", Status.INCOMPLETE, Reason.MAX_TOKENS))
        done = await sink.wait_done(response.id)
        assert (done.status, done.reason, done.finish_reason) == (
            Status.INCOMPLETE,
            "max_tokens",
            "length",
        )


async def test_cancel_stops_the_producer_and_reports_partial_usage(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "req-1", produce=script)
        script.feed("a", "b")
        await script.wait_emitted(2)
        response.usage.input_tokens = 11
        response.usage.output_tokens = 2
        assert await manager.cancel(session, request_id="req-1") is response
        # The Done is emitted at once, before the producer has even unwound.
        assert sink.dones(response.id) == [
            Done(response.id, "req-1", 3, Status.CANCELLED, "client_cancelled", None, 11, 2)
        ]
        await wait(script.exited)
        script.feed("c", FinishInfo())  # nobody consumes: the producer is gone
        await manager.wait_idle()
        assert sink.seqs(response.id) == [0, 1, 2, 3]
        assert manager.active_responses == 0


async def test_cancel_before_the_producer_started_still_runs_it_cancelled(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        await manager.cancel(session, response_id=response.id)
        await manager.wait_idle()
        assert [type(e) for e in sink.events] == [Created, Done]
        assert sink.dones(response.id)[0].status is Status.CANCELLED


async def test_cancelling_a_finished_response_is_a_no_op(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        script.feed(FinishInfo())
        await sink.wait_done(response.id)
        assert await manager.cancel(session, response_id=response.id) is response
        assert len(sink.dones(response.id)) == 1
        assert response.status is Status.COMPLETED


async def test_producer_error_ends_failed_with_the_error(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        boom = RuntimeError("upstream said no")
        response.usage.input_tokens = 5
        script.feed("partial", boom)
        done = await sink.wait_done(response.id)
        assert (done.status, done.reason, done.error) == (Status.FAILED, "upstream_error", boom)
        assert done.input_tokens == 5
        assert done.seq == 2
        await manager.wait_idle()
        # The manager survives a failing producer and keeps serving.
        other = Script()
        again, _ = await manager.create_response(session, "r2", produce=other)
        other.feed(FinishInfo())
        assert (await sink.wait_done(again.id)).status is Status.COMPLETED


async def test_drain_lets_running_finish_then_ends_the_rest_incomplete(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        quick, slow = Script(), Script()
        quick_response, _ = await manager.create_response(session, "quick", produce=quick)
        slow_response, _ = await manager.create_response(session, "slow", produce=slow)
        await wait(slow.started)
        async with anyio.create_task_group() as tg:
            tg.start_soon(manager.drain, anyio.current_time() + 0.1)
            await manager.wait_for(lambda: manager.draining)
            with pytest.raises(Draining):
                await manager.create_response(session, "new", produce=Script())
            quick.feed("x", FinishInfo())
            assert (await sink.wait_done(quick_response.id)).status is Status.COMPLETED
        # drain returned: the slow one was ended at the deadline and its producer is gone.
        assert slow.exited.is_set()
        done = sink.dones(slow_response.id)
        assert [(d.status, d.reason) for d in done] == [(Status.INCOMPLETE, "server_shutdown")]
        assert manager.producer_tasks == 0


async def test_drain_with_nothing_running_returns_at_once(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        with anyio.fail_after(1):
            await manager.drain(anyio.current_time() + 30)


async def test_leaving_the_manager_ends_running_responses(new_manager: ManagerFactory) -> None:
    sink = ListSink()
    script = Script()
    async with new_manager().running() as manager:
        session = manager.open_session("alice", sink)
        response, _ = await manager.create_response(session, "r", produce=script)
        await wait(script.started)
    assert script.exited.is_set()
    assert [(d.status, d.reason) for d in sink.dones(response.id)] == [
        (Status.INCOMPLETE, "server_shutdown")
    ]
    assert manager.retained_responses == 0


async def test_every_event_after_created_is_a_delta_until_done(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        script.feed(*[str(i) for i in range(50)], FinishInfo())
        await sink.wait_done(response.id)
        events = sink.of(response.id)
        assert isinstance(events[0], Created)
        assert all(isinstance(e, Delta) for e in events[1:-1])
        assert isinstance(events[-1], Done)
        assert [e.seq for e in events] == list(range(52))
