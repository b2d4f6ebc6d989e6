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
    SessionManager,
    Status,
    TooManyResponses,
    UnknownResponse,
)
from tests.sessions._support import ListSink, Script

pytestmark = pytest.mark.anyio


async def test_same_request_id_after_reconnect_reattaches_without_a_second_call() -> None:
    async with SessionManager(resume_window_s=5).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        response, created_new = manager.create_response(old, "req-1", produce=script)
        assert created_new
        script.feed("a", "b")
        await script.wait_emitted(2)
        manager.close_session(old)
        script.feed("c")
        await script.wait_emitted(3)

        sink = ListSink()
        new = manager.open_session("alice", sink)
        second_script = Script()
        again, created_new = manager.create_response(new, "req-1", produce=second_script)
        assert again is response
        assert not created_new
        assert isinstance(sink.events[0], Created)
        assert sink.seqs(response.id) == [0, 1, 2, 3]
        script.feed("d", FinishInfo())
        await sink.wait_done(response.id)
        assert sink.texts(response.id) == ["a", "b", "c", "d"]
        assert sink.seqs(response.id) == [0, 1, 2, 3, 4, 5]
        assert (script.calls, second_script.calls) == (1, 0)


async def test_same_request_id_on_the_same_session_is_a_duplicate() -> None:
    async with SessionManager(resume_window_s=5).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        manager.create_response(session, "req-1", produce=script)
        with pytest.raises(DuplicateRequest):
            manager.create_response(session, "req-1", produce=Script())
        script.feed(FinishInfo())
        await manager.wait_idle()
        # Still a duplicate while the finished response is retained on this session.
        with pytest.raises(DuplicateRequest):
            manager.create_response(session, "req-1", produce=Script())
        assert script.calls == 1


async def test_request_ids_are_scoped_by_principal() -> None:
    async with SessionManager(resume_window_s=5).running() as manager:
        a, b = Script(), Script()
        first, _ = manager.create_response(
            manager.open_session("alice", ListSink()), "x", produce=a
        )
        second, new = manager.create_response(
            manager.open_session("bob", ListSink()), "x", produce=b
        )
        assert new
        assert first is not second


async def test_reattach_needing_evicted_events_is_refused() -> None:
    async with SessionManager(resume_window_s=5, replay_max_events=2).running() as manager:
        old = manager.open_session("alice", ListSink())
        script = Script()
        manager.create_response(old, "req-1", produce=script)
        script.feed("a", "b", "c")
        await script.wait_emitted(3)
        manager.close_session(old)
        with pytest.raises(ReplayUnavailable) as caught:
            manager.create_response(
                manager.open_session("alice", ListSink()), "req-1", produce=Script()
            )
        assert isinstance(caught.value, DuplicateRequest)
        assert script.calls == 1


async def test_concurrency_limit_per_session() -> None:
    async with SessionManager(max_concurrent_responses=2).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        first, second = Script(), Script()
        response, _ = manager.create_response(session, "1", produce=first)
        manager.create_response(session, "2", produce=second)
        with pytest.raises(TooManyResponses):
            manager.create_response(session, "3", produce=Script())
        # Another socket has its own budget.
        manager.create_response(manager.open_session("alice", ListSink()), "4", produce=Script())
        first.feed(FinishInfo())
        await sink.wait_done(response.id)
        _, created_new = manager.create_response(session, "3", produce=Script())
        assert created_new


async def test_one_running_response_per_conversation() -> None:
    async with SessionManager().running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = manager.create_response(session, "1", produce=script, conversation_id="c")
        with pytest.raises(ConversationBusy):
            manager.create_response(
                manager.open_session("alice", ListSink()),
                "2",
                produce=Script(),
                conversation_id="c",
            )
        # Same conversation id of another principal is another conversation.
        manager.create_response(
            manager.open_session("bob", ListSink()), "2", produce=Script(), conversation_id="c"
        )
        manager.cancel(session, response_id=response.id)
        _, created_new = manager.create_response(
            session, "3", produce=Script(), conversation_id="c"
        )
        assert created_new


async def test_cancel_of_unknown_or_foreign_responses_is_refused() -> None:
    async with SessionManager().running() as manager:
        alice = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = manager.create_response(alice, "r", produce=script)
        mallory = manager.open_session("mallory", ListSink())
        with pytest.raises(UnknownResponse):
            manager.cancel(mallory, response_id=response.id)
        with pytest.raises(UnknownResponse):
            manager.cancel(mallory, request_id="r")
        with pytest.raises(UnknownResponse):
            manager.cancel(alice, response_id="resp_unknown")
        with pytest.raises(UnknownResponse):
            manager.cancel(alice)
        assert response.running


async def test_closed_session_starts_nothing() -> None:
    async with SessionManager().running() as manager:
        session = manager.open_session("alice", ListSink())
        manager.close_session(session)
        manager.close_session(session)  # idempotent
        with pytest.raises(SessionClosed):
            manager.create_response(session, "r", produce=Script())


def test_errors_share_one_base() -> None:
    for error in (DuplicateRequest, TooManyResponses, ConversationBusy, UnknownResponse):
        assert issubclass(error, SessionError)


async def test_response_ids_are_unguessable_and_distinct() -> None:
    async with SessionManager().running() as manager:
        session = manager.open_session("alice", ListSink(), defaults={"model": "m"})
        assert session.defaults == {"model": "m"}
        ids = set()
        for i in range(4):
            response, _ = manager.create_response(session, str(i), produce=Script())
            ids.add(response.id)
            assert len(response.id) >= 20
            manager.cancel(session, response_id=response.id)
            assert response.status is Status.CANCELLED
        assert len(ids) == 4
