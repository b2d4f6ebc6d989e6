"""Detach, resume windows, replay exactness, expiry and buffer overflow."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from sessions import (
    Created,
    Done,
    FinishInfo,
    Moved,
    Response,
    ResumeResult,
    Status,
)
from tests.sessions._support import ListSink, Script, wait
from tests.sessions.conftest import ManagerFactory

pytestmark = pytest.mark.anyio


async def test_window_zero_disconnect_cancels_at_once(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=0).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        await wait(script.started)
        manager.close_session(session)
        await wait(script.exited)
        assert response.done is not None
        assert (response.done.status, response.done.reason) == (
            Status.CANCELLED,
            "client_disconnected",
        )
        await manager.wait_idle()
        assert (manager.sessions, manager.active_responses, manager.retained_responses) == (0, 0, 0)
        # The socket is gone: its sink saw no Done, and resuming finds nothing.
        assert sink.dones(response.id) == []
        other = ListSink()
        result = await manager.resume(
            manager.open_session("alice", other), response.id, manager.epoch, 0
        )
        assert not result.recovered


async def test_resume_replays_exactly_the_missed_events_then_continues_live(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        first = ListSink()
        old = manager.open_session("alice", first)
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        script.feed("a", "b")
        await script.wait_emitted(2)
        manager.close_session(old)
        assert not response.attached
        script.feed("c", "d")
        await script.wait_emitted(4)
        assert first.seqs(response.id) == [0, 1, 2]

        second = ListSink()
        new = manager.open_session("alice", second)
        result = await manager.resume(new, response.id, response.epoch, 2)
        assert result == ResumeResult(response.id, True, 3)
        assert second.events[0] == result
        script.feed("e", FinishInfo())
        await second.wait_done(response.id)
        assert second.seqs(response.id) == [3, 4, 5, 6]
        assert second.texts(response.id) == ["c", "d", "e"]
        assert first.seqs(response.id) == [0, 1, 2]
        assert manager.session_of(response) is new


async def test_resume_from_an_earlier_seq_replays_what_the_client_never_got(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        script.feed("a", "b", "c")
        await script.wait_emitted(3)
        manager.close_session(old)
        sink = ListSink()
        # The old socket died with seq 2 and 3 still in its outbox.
        await manager.resume(manager.open_session("alice", sink), response.id, response.epoch, 1)
        assert sink.seqs(response.id) == [2, 3]


async def test_resume_with_last_seq_minus_one_includes_created(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        manager.close_session(old)
        sink = ListSink()
        result = await manager.resume(
            manager.open_session("alice", sink), response.id, manager.epoch, -1
        )
        assert result.from_seq == 0
        assert sink.events[1:] == [response.created]


async def test_resume_under_a_continuously_streaming_producer_has_no_gap_or_duplicate(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        first = ListSink()
        old = manager.open_session("alice", first)
        total = 300
        halfway = anyio.Event()

        async def produce(response: Response) -> FinishInfo:
            for i in range(total):
                response.emit_delta(str(i))
                if i == total // 2:
                    halfway.set()
                await anyio.lowlevel.checkpoint()
            return FinishInfo()

        response, _ = await manager.create_response(old, "r", produce=produce)
        await first.wait_for(lambda events: len(events) > 50)
        manager.close_session(old)
        received = first.seqs(response.id)
        await wait(halfway)  # the producer runs on, detached
        second = ListSink()
        await manager.resume(
            manager.open_session("alice", second), response.id, manager.epoch, received[-1]
        )
        await second.wait_done(response.id)
        assert received + second.seqs(response.id) == list(range(total + 2))


async def test_resume_of_a_finished_response_replays_through_done(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        manager.close_session(old)
        script.feed("a", FinishInfo())
        await wait(response.finished)
        sink = ListSink()
        assert (
            await manager.resume(manager.open_session("alice", sink), response.id, manager.epoch, 0)
        ).recovered
        assert sink.seqs(response.id) == [1, 2]
        assert isinstance(sink.events[-1], Done)


async def test_detach_window_expiry_cancels_the_producer_and_forgets(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=0.05).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        script.feed("a")
        await script.wait_emitted(1)
        manager.close_session(old)
        await wait(script.exited)
        assert response.done is not None
        assert (response.done.status, response.done.reason) == (Status.CANCELLED, "resume_expired")
        sink = ListSink()
        result = await manager.resume(
            manager.open_session("alice", sink), response.id, manager.epoch, 1
        )
        assert result == ResumeResult(response.id, False, None)
        assert sink.events == [result]
        assert manager.retained_responses == 0


async def test_resume_within_the_window_stops_the_expiry(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=0.05).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        manager.close_session(old)
        sink = ListSink()
        assert (
            await manager.resume(manager.open_session("alice", sink), response.id, manager.epoch, 0)
        ).recovered
        # Past the original deadline, the response is still live.
        await anyio.sleep(0.1)
        assert response.running
        script.feed("late", FinishInfo())
        assert (await sink.wait_done(response.id)).status is Status.COMPLETED


async def test_finished_responses_stay_resumable_for_the_window_then_expire(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=0.05).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        script.feed(FinishInfo())
        await sink.wait_done(response.id)
        assert manager.retained_responses == 1
        assert session.responses == {response.id: response}
        with anyio.fail_after(2):
            await manager.wait_for(lambda: manager.retained_responses == 0)
        assert session.responses == {}
        assert not (await manager.resume(session, response.id, manager.epoch, 0)).recovered


@pytest.mark.parametrize("case", ["epoch", "principal", "unknown", "future_seq"])
async def test_resume_refusals(case: str, new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        manager.close_session(old)
        principal, response_id, epoch, last_seq = "alice", response.id, manager.epoch, 0
        if case == "epoch":
            epoch += 1
        elif case == "principal":
            principal = "mallory"
        elif case == "unknown":
            response_id = "resp_nope"
        else:
            last_seq = 99
        sink = ListSink()
        result = await manager.resume(
            manager.open_session(principal, sink), response_id, epoch, last_seq
        )
        assert result == ResumeResult(response_id, False, None)
        assert sink.events == [result]
        assert not response.attached


async def test_detached_buffer_overflow_cancels_and_resume_fails(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5, replay_max_events=3).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        # Attached, eviction is harmless: the client has those events.
        script.feed("1", "2", "3", "4", "5")
        await script.wait_emitted(5)
        assert response.running
        manager.close_session(old)
        script.feed("6", "7", "8")
        await script.wait_emitted(8)
        assert response.running  # three unseen events still fit
        script.feed("9")
        await wait(script.exited)
        assert response.done is not None
        assert (response.done.status, response.done.reason) == (Status.CANCELLED, "buffer_overflow")
        result = await manager.resume(
            manager.open_session("alice", ListSink()), response.id, manager.epoch, 5
        )
        assert not result.recovered


async def test_resume_steals_from_a_live_session(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        first, second = ListSink(), ListSink()
        one = manager.open_session("alice", first)
        two = manager.open_session("alice", second)
        script = Script()
        response, _ = await manager.create_response(one, "r", produce=script)
        await manager.resume(two, response.id, manager.epoch, 0)
        assert one.responses == {}
        assert two.responses == {response.id: response}
        script.feed("x", FinishInfo())
        await second.wait_done(response.id)
        assert first.seqs(response.id) == [0]
        # The old session is told once, so that it stops waiting for the Done.
        assert first.moves() == [Moved(response.id, "r")]
        assert second.moves() == []
        # Closing the old socket no longer affects the response.
        manager.close_session(one)
        assert manager.session_of(response) is two


async def test_a_recreate_by_request_id_steals_from_a_live_session_too(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        first, second = ListSink(), ListSink()
        one = manager.open_session("alice", first)
        script = Script()
        response, _ = await manager.create_response(one, "r", produce=script)
        script.feed("x")
        await script.wait_emitted(1)
        again, new = await manager.create_response(
            manager.open_session("alice", second), "r", produce=Script()
        )
        assert (again, new) == (response, False)
        script.feed("y", FinishInfo())
        await second.wait_done(response.id)
        assert second.seqs(response.id) == [0, 1, 2, 3]
        # The old session, still open, got nothing after the move but the notice of
        # it: no Done either.
        assert first.seqs(response.id) == [0, 1]
        assert first.moves() == [Moved(response.id, "r")]
        assert isinstance(first.events[-1], Moved)
        assert one.responses == {}


async def test_a_finished_response_replayed_elsewhere_tells_its_old_session_nothing(
    new_manager: ManagerFactory,
) -> None:
    # Its Done already reached the old session: nothing is missing there.
    async with new_manager(resume_window_s=5).running() as manager:
        first, second = ListSink(), ListSink()
        one = manager.open_session("alice", first)
        script = Script()
        response, _ = await manager.create_response(one, "r", produce=script)
        script.feed("x", FinishInfo())
        await first.wait_done(response.id)
        await manager.resume(manager.open_session("alice", second), response.id, manager.epoch, 0)
        await second.wait_done(response.id)
        assert first.moves() == []


async def test_cancel_from_another_session_tells_the_canceller(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(old, "r", produce=script)
        manager.close_session(old)
        sink = ListSink()
        await manager.cancel(manager.open_session("alice", sink), response_id=response.id)
        assert [type(e) for e in sink.events] == [Done]
        await wait(script.exited)
        assert not isinstance(sink.events[0], Created)
