"""``Response.on_abort``: a forced end calls the producer's abort synchronously, first."""

from __future__ import annotations

import anyio
import pytest

from sessions import FinishInfo, Response, SessionManager, Status
from tests.sessions._support import ListSink, Script, wait
from tests.sessions.conftest import ManagerFactory

pytestmark = pytest.mark.anyio


class Abort:
    """The callback: records each call and whether the producer was already cancelled."""

    def __init__(self, response: Response, *, fail: bool = False) -> None:
        self.response = response
        self.calls = 0
        self.scope_cancelled_at_call: bool | None = None
        self._fail = fail

    def __call__(self) -> None:
        self.calls += 1
        self.scope_cancelled_at_call = self.response.cancel_scope.cancel_called
        if self._fail:
            raise RuntimeError("abort failed")


async def _started(
    manager: SessionManager, *, fail: bool = False
) -> tuple[ListSink, Script, Response, Abort]:
    sink = ListSink()
    session = manager.open_session("alice", sink)
    script = Script()
    response, _ = await manager.create_response(session, "req-1", produce=script)
    abort = Abort(response, fail=fail)
    response.on_abort(abort)
    script.feed("a")
    await script.wait_emitted(1)
    return sink, script, response, abort


async def test_cancel_calls_abort_synchronously_before_cancelling_the_scope(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager().running() as manager:
        sink, script, response, abort = await _started(manager)
        session = manager.session_of(response)
        assert session is not None
        await manager.cancel(session, request_id="req-1")
        # No await since the call: the abort has already run, once, before the cancel.
        assert abort.calls == 1
        assert abort.scope_cancelled_at_call is False
        assert response.cancel_scope.cancel_called
        assert not script.exited.is_set()
        await manager.cancel(session, request_id="req-1")  # already ended: no second abort
        assert abort.calls == 1
        await wait(script.exited)
        assert sink.dones(response.id)[0].status is Status.CANCELLED


async def test_window_zero_disconnect_calls_abort(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=0).running() as manager:
        _, script, response, abort = await _started(manager)
        session = manager.session_of(response)
        assert session is not None
        manager.close_session(session)
        assert abort.calls == 1
        assert abort.scope_cancelled_at_call is False
        await wait(script.exited)
        assert response.status is Status.CANCELLED


async def test_detach_with_a_resume_window_does_not_abort(new_manager: ManagerFactory) -> None:
    async with new_manager(resume_window_s=30).running() as manager:
        _, script, response, abort = await _started(manager)
        session = manager.session_of(response)
        assert session is not None
        manager.close_session(session)
        assert abort.calls == 0
        assert response.running
        script.feed(FinishInfo())
        await wait(response.finished)
        assert abort.calls == 0


async def test_close_with_cancel_aborts_despite_the_resume_window_and_tells_the_sink(
    new_manager: ManagerFactory,
) -> None:
    async with new_manager(resume_window_s=30).running() as manager:
        sink, script, response, abort = await _started(manager)
        session = manager.session_of(response)
        assert session is not None
        manager.close_session(session, cancel="policy_violation")
        assert abort.calls == 1
        done = sink.dones(response.id)[0]  # pushed before the session let go of its sink
        assert (done.status, done.reason) == (Status.CANCELLED, "policy_violation")
        await wait(script.exited)
        assert manager.active_responses == 0


async def test_drain_deadline_and_shutdown_call_abort(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        _, _, drained, drained_abort = await _started(manager)
        with anyio.fail_after(2):
            await manager.drain(anyio.current_time())  # the deadline is now
        assert drained_abort.calls == 1
        assert drained.status is Status.INCOMPLETE
    async with new_manager().running() as manager:
        _, _, shut, shut_abort = await _started(manager)
    assert shut_abort.calls == 1
    assert shut.status is Status.INCOMPLETE


async def test_an_exception_in_abort_is_contained(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        sink, script, response, abort = await _started(manager, fail=True)
        session = manager.session_of(response)
        assert session is not None
        assert await manager.cancel(session, request_id="req-1") is response
        assert abort.calls == 1
        assert response.cancel_scope.cancel_called
        assert [d.status for d in sink.dones(response.id)] == [Status.CANCELLED]
        await wait(script.exited)
        await manager.wait_idle()


async def test_normal_end_never_aborts_and_drops_the_callback(new_manager: ManagerFactory) -> None:
    async with new_manager().running() as manager:
        _, script, response, abort = await _started(manager)
        script.feed(FinishInfo())
        await wait(response.finished)
        assert response.status is Status.COMPLETED
        response.on_abort(abort)  # after the end: ignored
        session = manager.session_of(response)
        assert session is not None
        await manager.cancel(session, request_id="req-1")  # a no-op on a finished response
        assert abort.calls == 0
