"""Idempotent request ids, per-session concurrency, busy conversations, ownership."""

from __future__ import annotations

import pytest

from sessions import (
    ConversationBusy,
    Created,
    DuplicateRequest,
    FinishInfo,
    ReplayUnavailable,
    SessionClosed,
    SessionError,
    Status,
    TooManyResponses,
    UnknownResponse,
)
from tests.sessions._support import ListSink, Script
from tests.sessions.conftest import ManagerFactory

pytestmark = pytest.mark.anyio


async def test_same_request_id_after_reconnect_reattaches_without_a_second_call(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, created_new = await manager.create_response(old, "req-1", produce=script)
        assert created_new
        script.feed("a", "b")
        await script.wait_emitted(2)
        manager.close_session(old)
        script.feed("c")
        await script.wait_emitted(3)

        sink = ListSink()
        new = manager.open_session("alice", sink)
        second_script = Script()
        again, created_new = await manager.create_response(new, "req-1", produce=second_script)
        assert again is response
        assert not created_new
        assert isinstance(sink.events[0], Created)
        assert sink.seqs(response.id) == [0, 1, 2, 3]
        script.feed("d", FinishInfo())
        await sink.wait_done(response.id)
        assert sink.texts(response.id) == ["a", "b", "c", "d"]
        assert sink.seqs(response.id) == [0, 1, 2, 3, 4, 5]
        assert (script.calls, second_script.calls) == (1, 0)


async def test_same_request_id_on_the_same_session_is_a_duplicate(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "req-1", produce=script)
        with pytest.raises(DuplicateRequest, match="already in progress"):
            await manager.create_response(session, "req-1", produce=Script())
        script.feed(FinishInfo())
        await manager.wait_idle()
        # Still a duplicate while the finished response is retained on this session,
        # and the refusal says that it has been answered.
        with pytest.raises(DuplicateRequest, match="was already answered"):
            await manager.create_response(session, "req-1", produce=Script())
        assert script.calls == 1
        assert await manager.locate(session, "req-1") == (response.id, response.epoch)
        assert await manager.locate(session, "req-never") is None


async def test_request_ids_are_scoped_by_principal(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5).running() as manager:
        a, b = Script(), Script()
        first, _ = await manager.create_response(
            manager.open_session("alice", ListSink()), "x", produce=a
        )
        second, new = await manager.create_response(
            manager.open_session("bob", ListSink()), "x", produce=b
        )
        assert new
        assert first is not second


async def test_reattach_needing_evicted_events_is_refused(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=5, replay_max_events=2).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        await manager.create_response(old, "req-1", produce=script)
        script.feed("a", "b", "c")
        await script.wait_emitted(3)
        manager.close_session(old)
        new = manager.open_session("alice", ListSink())
        with pytest.raises(ReplayUnavailable) as caught:
            await manager.create_response(new, "req-1", produce=Script())
        assert isinstance(caught.value, DuplicateRequest)
        assert script.calls == 1
        # What the refusal can name, so the client resumes instead.
        response_id, epoch = await manager.locate(new, "req-1") or ("", -1)
        assert (await manager.resume(new, response_id, epoch, 3)).recovered
        assert await manager.locate(manager.open_session("bob", ListSink()), "req-1") is None


async def test_concurrency_limit_per_session(new_manager: ManagerFactory) -> None:
    async with new_manager(max_concurrent_responses=2).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        first, second = Script(), Script()
        response, _ = await manager.create_response(session, "1", produce=first)
        await manager.create_response(session, "2", produce=second)
        with pytest.raises(TooManyResponses):
            await manager.create_response(session, "3", produce=Script())
        # Another socket has its own budget.
        await manager.create_response(
            manager.open_session("alice", ListSink()), "4", produce=Script()
        )
        first.feed(FinishInfo())
        await sink.wait_done(response.id)
        _, created_new = await manager.create_response(session, "3", produce=Script())
        assert created_new


async def test_resume_and_reattach_are_never_refused_by_the_concurrency_limit(
    new_manager: ManagerFactory,
) -> None:
    # They start no upstream work, and refusing them would lose answers already paid for.
    async with new_manager(resume_window_s=5, max_concurrent_responses=1).running() as manager:
        old = manager.open_session("alice", ListSink())
        first, _ = await manager.create_response(old, "1", produce=Script())
        manager.close_session(old)
        old = manager.open_session("alice", ListSink())
        await manager.create_response(old, "2", produce=Script())
        manager.close_session(old)
        session = manager.open_session("alice", ListSink())
        await manager.create_response(session, "3", produce=Script())
        assert (await manager.resume(session, first.id, first.epoch, 0)).recovered
        _, created_new = await manager.create_response(session, "2", produce=Script())
        assert not created_new
        assert session.running_count == 3  # over the limit of 1
        with pytest.raises(TooManyResponses):  # which still refuses anything new
            await manager.create_response(session, "4", produce=Script())


async def test_one_running_response_per_conversation(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(
            session, "1", produce=script, conversation_id="c"
        )
        with pytest.raises(ConversationBusy):
            await manager.create_response(
                manager.open_session("alice", ListSink()),
                "2",
                produce=Script(),
                conversation_id="c",
            )
        # Same conversation id of another principal is another conversation.
        await manager.create_response(
            manager.open_session("bob", ListSink()), "2", produce=Script(), conversation_id="c"
        )
        await manager.cancel(session, response_id=response.id)
        _, created_new = await manager.create_response(
            session, "3", produce=Script(), conversation_id="c"
        )
        assert created_new


async def test_cancel_of_unknown_or_foreign_responses_is_refused(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager().running() as manager:
        alice = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(alice, "r", produce=script)
        mallory = manager.open_session("mallory", ListSink())
        with pytest.raises(UnknownResponse):
            await manager.cancel(mallory, response_id=response.id)
        with pytest.raises(UnknownResponse):
            await manager.cancel(mallory, request_id="r")
        with pytest.raises(UnknownResponse):
            await manager.cancel(alice, response_id="resp_unknown")
        with pytest.raises(UnknownResponse):
            await manager.cancel(alice)
        assert response.running


async def test_closed_session_starts_nothing(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        session = manager.open_session("alice", ListSink())
        manager.close_session(session)
        manager.close_session(session)  # idempotent
        with pytest.raises(SessionClosed):
            await manager.create_response(session, "r", produce=Script())


def test_errors_share_one_base() -> None:
    for error in (DuplicateRequest, TooManyResponses, ConversationBusy, UnknownResponse):
        assert issubclass(error, SessionError)


async def test_response_ids_are_unguessable_and_distinct(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        session = manager.open_session("alice", ListSink(), defaults={"model": "m"})
        assert session.defaults == {"model": "m"}
        ids = set()
        for i in range(4):
            response, _ = await manager.create_response(session, str(i), produce=Script())
            ids.add(response.id)
            assert len(response.id) >= 20
            await manager.cancel(session, response_id=response.id)
            assert response.status is Status.CANCELLED
        assert len(ids) == 4


async def test_the_running_response_of_a_conversation_is_found_by_it(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager().running() as manager:
        session = manager.open_session("alice", ListSink())
        assert await manager.running_in_any(session, "c") is None
        response, _ = await manager.create_response(
            session, "1", produce=Script(), conversation_id="c"
        )
        assert await manager.running_in_any(session, "c") is response
        assert await manager.running_in_any(manager.open_session("bob", ListSink()), "c") is None
        await manager.cancel(session, response_id=response.id)
        assert await manager.running_in_any(session, "c") is None
