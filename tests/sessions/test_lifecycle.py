"""The response lifecycle: one table of allowed moves, and the manager keeps to it."""

from __future__ import annotations

import pytest

from sessions import TRANSITIONS, FinishInfo, IllegalTransition, State
from sessions.lifecycle import check
from tests.sessions._support import ListSink, Script, wait
from tests.sessions.conftest import ManagerFactory

pytestmark = pytest.mark.anyio


def test_the_table_allows_only_forward_moves() -> None:
    assert TRANSITIONS[State.RUNNING] == {State.ENDED, State.FORGOTTEN}
    assert TRANSITIONS[State.ENDED] == {State.FORGOTTEN}
    assert TRANSITIONS[State.FORGOTTEN] == frozenset()
    check(State.RUNNING, State.ENDED)
    for current, target in [
        (State.ENDED, State.RUNNING),
        (State.FORGOTTEN, State.ENDED),
        (State.ENDED, State.ENDED),
    ]:
        with pytest.raises(IllegalTransition):
            check(current, target)


async def test_a_response_runs_ends_and_is_forgotten(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=0.05).running() as manager:
        sink = ListSink()
        session = manager.open_session("alice", sink)
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        assert response.state is State.RUNNING
        script.feed("a", FinishInfo())
        await wait(response.finished)
        assert response.state is State.ENDED
        # A second finish is refused by the state, not by a flag.
        assert response.finish(FinishInfo().status) is None
        await manager.wait_for(lambda: manager.retained_responses == 0)
        assert response.state is State.FORGOTTEN
        # Nothing moves a forgotten response: late deltas are ignored.
        response.emit_delta("late")
        assert sink.texts(response.id) == ["a"]


async def test_expiry_reads_the_injected_clock(new_manager: ManagerFactory) -> None:
    now = [1000.0]
    async with new_manager(resume_window_s=30, clock=lambda: now[0]).running() as manager:
        session = manager.open_session("alice", ListSink())
        script = Script()
        response, _ = await manager.create_response(session, "r", produce=script)
        manager.close_session(session)
        assert response.deadline == 1030.0
        assert response.running


def test_response_does_not_import_session() -> None:
    import pathlib

    import sessions.response

    source = pathlib.Path(sessions.response.__file__).read_text()
    assert "from sessions.session" not in source
    assert "import sessions.session" not in source
