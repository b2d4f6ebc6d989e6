"""The session manager: sessions, responses, idempotency, resume windows and drain.

Every producer runs in the manager's own task group, not the socket's, so a
response outlives its socket for the resume window yet nothing outlives
:meth:`SessionManager.running`. Deadlines (detach windows, retention of finished
responses) are kept in one heap served by one expiry task that sleeps until the
nearest deadline and is woken when an earlier one appears.

Responses are kept in a :class:`~sessions.backend.Backend`. ``create_response``,
``resume`` and ``cancel`` are coroutines because a shared backend may have to ask
other instances; for a response this process knows they never suspend before
attaching and replaying, which is what makes resume gap- and duplicate-free.
With the in-memory backend they never suspend at all.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Final

import anyio
from anyio.abc import TaskGroup

from sessions.backend import Backend, Control, ControlOp, RemoteRecord
from sessions.errors import (
    ConversationBusy,
    Draining,
    DuplicateRequest,
    ReplayUnavailable,
    SessionClosed,
    SessionError,
    TooManyResponses,
    UnknownResponse,
)
from sessions.events import (
    Done,
    FinishInfo,
    Moved,
    Reason,
    ResponseEvent,
    ResponseMeta,
    ResumeResult,
    Status,
)
from sessions.lifecycle import State
from sessions.memory import MemoryBackend
from sessions.response import Response, new_response_id
from sessions.session import Session
from sessions.sink import Sink

Produce = Callable[[Response], Awaitable[FinishInfo]]
"""The gateway's coroutine: streams from upstream, calls ``response.emit_delta``."""

Clock = Callable[[], float]

_DEFAULT_META: Final = ResponseMeta(model="", provider="")


class SessionManager:
    """Owns every session of one process and the responses it runs or mirrors.

    ``resume_window_s``: how long a response survives its socket (and how long a
    finished one stays resumable and idempotent); 0 cancels at disconnect.
    ``clock`` must tick in seconds like ``anyio.current_time`` (deadlines passed to
    :meth:`drain` use it); waits are real-time sleeps of the clock's differences.
    ``backend``: where responses are kept (default: in memory, this process only).
    """

    def __init__(
        self,
        *,
        resume_window_s: float = 30.0,
        replay_max_events: int = 10_000,
        replay_max_bytes: int = 2 * 1024 * 1024,
        max_concurrent_responses: int = 4,
        clock: Clock = anyio.current_time,
        backend: Backend | None = None,
    ) -> None:
        if resume_window_s < 0:
            raise ValueError("resume_window_s must be >= 0")
        self.resume_window_s = resume_window_s
        self.replay_max_events = replay_max_events
        self.replay_max_bytes = replay_max_bytes
        self.max_concurrent_responses = max_concurrent_responses
        # Identifies this process's buffers: a resume naming another epoch finds nothing.
        self.epoch = secrets.randbelow(2**31)
        self._clock = clock
        self._backend: Backend = MemoryBackend() if backend is None else backend
        self._draining = False
        self._tg: TaskGroup | None = None
        self._sessions: dict[str, Session] = {}
        self._running: dict[str, Response] = {}  # owned here, no Done yet
        self._tasks = 0
        self._changed = anyio.Event()
        self._heap: list[tuple[float, int, Response]] = []
        self._heap_order = itertools.count()
        self._planned = math.inf
        self._replan = anyio.Event()

    # --- counts (metrics, leak tests) -------------------------------------------------

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def sessions(self) -> int:
        """Open sessions."""
        return len(self._sessions)

    @property
    def active_responses(self) -> int:
        """Responses owned here that have not emitted their ``Done`` yet."""
        return len(self._running)

    @property
    def producer_tasks(self) -> int:
        """Producer (and mirror follower) tasks still alive (a cancelled one may unwind
        after its ``Done``)."""
        return self._tasks

    @property
    def retained_responses(self) -> int:
        """Responses still known here: running, or finished and within their window."""
        return len(self._backend.local())

    # --- lifetime ---------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SessionManager]:
        """Run the manager: its task group hosts every producer and the expiry task.

        On exit, responses still running end ``incomplete``/``server_shutdown`` and
        their producers are cancelled (call :meth:`drain` first for a graceful end).
        """
        if self._tg is not None or self._draining:
            raise RuntimeError("a SessionManager runs once")
        try:
            async with (
                self._backend.running(self._on_control),
                anyio.create_task_group() as tg,
            ):
                self._tg = tg
                tg.start_soon(self._expiry_loop)
                try:
                    yield self
                finally:
                    self._draining = True
                    for response in list(self._running.values()):
                        self._end(response, Status.INCOMPLETE, Reason.SERVER_SHUTDOWN)
                    tg.cancel_scope.cancel()
        finally:
            self._tg = None
            # Nothing can be resumed without the task group; drop what was retained.
            for response in self._backend.local():
                self._forget(response)
            self._heap.clear()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; re-checked whenever a response ends,
        is forgotten, or a producer task exits (tests, metrics, shutdown)."""
        while not predicate():
            await self._changed.wait()

    async def wait_idle(self) -> None:
        """Wait until no producer task is alive."""
        await self.wait_for(lambda: self._tasks == 0)

    async def drain(self, deadline: float) -> None:
        """Refuse new responses; let running ones finish until ``deadline`` (``clock`` time).

        At the deadline the rest end ``incomplete``/``server_shutdown``. Returns when
        every producer task has ended.
        """
        self._draining = True
        self._notify()
        with anyio.move_on_after(max(0.0, deadline - self._clock())):
            await self.wait_for(lambda: not self._running)
        for response in list(self._running.values()):
            self._end(response, Status.INCOMPLETE, Reason.SERVER_SHUTDOWN)
        for response in self._backend.local():
            if response.mirror and response.running:
                self._forget(response)  # its owner goes on; we only stop following
        await self.wait_idle()

    # --- sessions -----------------------------------------------------------------------

    def open_session(
        self, principal: str, sink: Sink, *, defaults: dict[str, object] | None = None
    ) -> Session:
        """Register a new socket's session. ``principal`` scopes ids and idempotency."""
        session = Session(principal, sink, defaults)
        self._sessions[session.id] = session
        return session

    def close_session(self, session: Session, *, cancel: str | None = None) -> None:
        """The socket is gone: detach its responses (idempotent).

        Running ones keep running for the resume window, buffering; with a window
        of 0 they are cancelled at once (``client_disconnected``). With ``cancel``
        (a reason, e.g. ``policy_violation``: the socket is closed for abuse, and
        nobody may resume what it started) they are cancelled at once with that
        reason instead, their ``Done`` still pushed to the session's sink.
        """
        if session.closed:
            return
        session.closed = True
        self._sessions.pop(session.id, None)
        attached = list(session.responses.values())
        if cancel is not None:
            for response in attached:
                self._end(response, Status.CANCELLED, cancel)
        session.responses.clear()
        for response in attached:
            response.detach()
            if response.mirror:
                self._mirror_detached(response)
            elif not response.running:
                continue
            elif self.resume_window_s == 0:
                self._end(response, Status.CANCELLED, Reason.CLIENT_DISCONNECTED)
            elif response.remote_followers == 0:
                self._set_expiry(response, self._clock() + self.resume_window_s)

    # --- responses ------------------------------------------------------------------------

    async def create_response(
        self,
        session: Session,
        request_id: str,
        *,
        produce: Produce,
        meta: ResponseMeta = _DEFAULT_META,
        conversation_id: str | None = None,
    ) -> tuple[Response, bool]:
        """Start a response, or re-attach the one this ``request_id`` already names.

        New: pushes ``Created`` to the session's sink, then runs ``produce`` in the
        manager's task group; exactly one ``Done`` follows, whatever happens.
        Returns ``(response, True)``.

        Known ``request_id`` (same principal, on any instance of a shared backend)
        attached elsewhere or detached: it is attached to ``session``, its
        ``Created`` and every later event are replayed to the sink and it continues
        live; ``produce`` is not called. Returns ``(response, False)`` (a mirror if
        another instance owns it). This works while draining too: it starts nothing,
        and, like :meth:`resume`, it is never refused by ``max_concurrent_responses``
        (the session may go over it): the answer is already being paid for, and
        refusing would lose it.

        Raises :class:`DuplicateRequest` (already attached to this session, running or
        ended and still retained),
        :class:`ReplayUnavailable` (known but no longer replayable whole),
        :class:`Draining`, :class:`TooManyResponses`, :class:`ConversationBusy`,
        :class:`SessionClosed`, :class:`~sessions.errors.BackendUnavailable`.
        """
        existing = self._known_request(session, request_id)
        if existing is not None:
            return existing, False
        self._check_can_start(session, conversation_id)
        backend = self._backend
        if backend.shared:
            backend.check_available()
        response = Response(
            request_id=request_id,
            principal=session.principal,
            conversation_id=conversation_id,
            meta=meta,
            epoch=self.epoch,
            replay_max_events=self.replay_max_events,
            replay_max_bytes=self.replay_max_bytes,
            on_overflow=self._on_overflow,
            response_id=new_response_id(),
        )
        if backend.shared:
            record = await backend.claim(response)
            # The world may have moved while we waited: check everything again.
            existing = self._known_request(session, request_id)
            if existing is not None:
                return existing, False
            if record is not None:
                mirror = await self._mirror(session, record, -1)
                if mirror is None:
                    raise ReplayUnavailable(
                        f"request_id {request_id!r} can no longer be replayed whole; resume it"
                    )
                return mirror, False
            self._check_can_start(session, conversation_id)
        tg = self._tg
        assert tg is not None  # _check_can_start saw it
        response.publish_to(backend.publisher(response))
        backend.add(response)
        self._running[response.id] = response
        self._attach(response, session)
        response.publish_created()
        self._tasks += 1
        tg.start_soon(self._produce, response, produce, name=f"response {response.id}")
        return response, True

    async def locate(self, session: Session, request_id: str) -> tuple[str, int] | None:
        """``(response_id, epoch)`` of the principal's response ``request_id`` names,
        here or (shared backend) on any instance; ``None`` if none is known (any more).

        What a refused duplicate (:class:`DuplicateRequest`, :class:`ReplayUnavailable`)
        can name, so the client can ``resume`` the response instead. Never raises: a
        shared backend that cannot be asked leaves the ids unknown.
        """
        response = self._backend.by_request(session.principal, request_id)
        if response is not None:
            return response.id, response.epoch
        if not self._backend.shared:
            return None
        with contextlib.suppress(SessionError):
            record = await self._backend.lookup(session.principal, request_id=request_id)
            if record is not None and record.principal == session.principal:
                return record.response_id, record.epoch
        return None

    def session_of(self, response: Response) -> Session | None:
        """The open session ``response`` is attached to, if any."""
        return self._sessions.get(response.attached_to or "")

    def find(
        self, session: Session, *, response_id: str | None = None, request_id: str | None = None
    ) -> Response:
        """The principal's response known here, by id or request_id, else
        :class:`UnknownResponse`."""
        response = None
        if response_id is not None:
            response = self._backend.get(response_id)
        elif request_id is not None:
            response = self._backend.by_request(session.principal, request_id)
        if response is None or response.principal != session.principal:
            raise UnknownResponse("no such response")
        return response

    def running_in(self, session: Session, conversation_id: str) -> Response | None:
        """The principal's running response in ``conversation_id`` owned here, or ``None``.

        At most one exists (:class:`ConversationBusy` guards it): surfaces keyed by a
        conversation rather than a response (the UI Message Stream's chat id) find
        the answer to resume or stop here. A scan of this instance's running
        responses: one per stop or resume request, never per token.
        """
        principal = session.principal
        for response in self._running.values():
            if response.conversation_id == conversation_id and response.principal == principal:
                return response
        return None

    async def running_in_any(self, session: Session, conversation_id: str) -> Response | None:
        """Like :meth:`running_in`, on any instance of a shared backend: a response
        another instance runs comes back as a local mirror (followed live), to
        :meth:`resume` or :meth:`cancel` by its id. Raises
        :class:`~sessions.errors.BackendUnavailable`."""
        response = self.running_in(session, conversation_id)
        if response is not None or not self._backend.shared or session.closed:
            return response
        for known in self._backend.local():
            if (
                known.mirror
                and known.running
                and known.conversation_id == conversation_id
                and known.principal == session.principal
            ):
                return known
        record = await self._backend.lookup_conversation(session.principal, conversation_id)
        if record is None:
            return None
        found = self._backend.get(record.response_id)
        if found is not None:
            return found if found.running else None
        return await self._mirror(session, record, -1, attach=False)

    async def cancel(
        self,
        session: Session,
        *,
        response_id: str | None = None,
        request_id: str | None = None,
        reason: str = Reason.CLIENT_CANCELLED,
    ) -> Response:
        """Cancel a running response: its ``Done`` (``cancelled``) is emitted and its
        producer is cancelled. A no-op for a finished one.

        If the response is not attached to ``session``, its ``Done`` is pushed to
        ``session``'s sink as well, so the canceller always learns the outcome.
        Owned here, all of this happens before returning. Owned by another instance
        (shared backend), the cancel is sent to its owner, which closes the upstream;
        the ``Done`` reaches ``session`` when the owner has logged it.
        Raises :class:`UnknownResponse`.
        """
        try:
            response = self.find(session, response_id=response_id, request_id=request_id)
        except UnknownResponse:
            if not self._backend.shared:
                raise
            record = await self._backend.lookup(
                session.principal, response_id=response_id, request_id=request_id
            )
            if record is None or record.principal != session.principal:
                raise
            mirror = self._backend.get(record.response_id) or await self._mirror(
                session, record, -1 if record.ended else None, attach=False
            )
            if mirror is None:
                raise
            response = mirror
        if response.mirror:
            if response.running:
                if response.attached_to != session.id:
                    response.notify_done.append(session.sink)
                owner = self._owner_of(response)
                await self._backend.send(owner, Control(ControlOp.CANCEL, response.id, reason))
            return response
        done = self._end(response, Status.CANCELLED, reason)
        if done is not None and response.attached_to != session.id:
            session.sink.push(done)
        return response

    async def resume(
        self, session: Session, response_id: str, epoch: int, last_seq: int
    ) -> ResumeResult:
        """Attach a response to ``session`` and replay every event with ``seq > last_seq``.

        Pushes the :class:`ResumeResult` to the sink first, then the replayed events,
        then live events continue; also returns the result. A response known here is
        attached and replayed without suspending. ``recovered`` is False (and
        nothing is attached) for an unknown, expired or foreign response, an epoch
        mismatch, or events no longer buffered.
        Resuming on the session it is already attached to replays anyway (the
        client asked for it); a response attached to another live session moves:
        that session is told (:class:`~sessions.events.Moved`) and gets nothing more
        of it, not even its ``Done``. Never refused
        by ``max_concurrent_responses`` (see :meth:`create_response`).
        """
        response = self._backend.get(response_id)
        if response is None and self._backend.shared and not session.closed:
            record = await self._backend.lookup(session.principal, response_id=response_id)
            if record is not None and (record.principal, record.epoch) == (
                session.principal,
                epoch,
            ):
                response = self._backend.get(response_id) or await self._mirror(
                    session, record, last_seq, attach=False
                )
        events = None
        if response is not None and (response.principal, response.epoch) == (
            session.principal,
            epoch,
        ):
            events = response.replay(last_seq)
        if response is None or events is None or session.closed:
            result = ResumeResult(response_id, False, None)
            session.sink.push(result)
            return result
        result = ResumeResult(response_id, True, max(last_seq, -1) + 1)
        self._attach(response, session)
        sink = session.sink
        sink.push(result)
        for event in events:
            sink.push(event)
        return result

    # --- internals --------------------------------------------------------------------

    def _known_request(self, session: Session, request_id: str) -> Response | None:
        """The local response of this request id re-attached and replayed, if any."""
        if session.closed:
            raise SessionClosed("session is closed")
        existing = self._backend.by_request(session.principal, request_id)
        if existing is None:
            return None
        if existing.attached_to == session.id:
            # Retained after its Done too (for the resume window): say which case it is.
            if existing.running:
                raise DuplicateRequest(f"request_id {request_id!r} is already in progress")
            raise DuplicateRequest(
                f"request_id {request_id!r} was already answered (its response has ended);"
                " send a new request_id"
            )
        events = existing.replay(-1)
        if events is None:
            raise ReplayUnavailable(
                f"request_id {request_id!r} can no longer be replayed whole; resume it"
            )
        self._attach(existing, session)
        for event in events:
            session.sink.push(event)
        return existing

    def _check_can_start(self, session: Session, conversation_id: str | None) -> None:
        if session.closed:
            raise SessionClosed("session is closed")
        if self._draining:
            raise Draining("server is draining")
        if self._tg is None:
            raise RuntimeError("SessionManager is not running")
        if session.running_count >= self.max_concurrent_responses:
            raise TooManyResponses(
                f"at most {self.max_concurrent_responses} concurrent responses per session"
            )
        if conversation_id is not None and self._backend.busy(session.principal, conversation_id):
            raise ConversationBusy(f"conversation {conversation_id!r} has a running response")

    def _attach(self, response: Response, session: Session) -> None:
        previous = response.attached_to
        if previous is not None and previous != session.id:
            other = self._sessions.get(previous)
            if other is not None:
                other.responses.pop(response.id, None)
                if response.done is None:  # still expected there: say it will not come
                    other.sink.push(Moved(response.id, response.request_id))
        was_attached = response.attached
        response.attach(session.sink, session.id)
        session.responses[response.id] = response
        response.deadline = None  # a stale heap entry is skipped when popped
        if response.mirror and not was_attached and response.running:
            self._signal_owner(response, ControlOp.ATTACH)

    async def _mirror(
        self,
        session: Session,
        record: RemoteRecord,
        last_seq: int | None,
        *,
        attach: bool = True,
    ) -> Response | None:
        """A local mirror of ``record`` holding every event after ``last_seq``
        (``None``: none of the past, only what comes next), followed live from now
        on; attached to ``session`` with its events replayed when ``attach``.
        ``None`` if the events asked for are gone."""
        backend = self._backend
        if last_seq is None:
            after = await backend.last_seq(record)
            events: list[ResponseEvent] = []
        else:
            after = last_seq
            fetched = await backend.events_after(record, last_seq)
            if fetched is None:
                return None
            events = fetched
        known = backend.get(record.response_id)
        if known is not None:  # mirrored (or claimed here) while we waited
            if attach:
                replay = known.replay(-1)
                if replay is None:
                    return None
                self._attach(known, session)
                for event in replay:
                    session.sink.push(event)
            return known
        start = max(after, 0) + 1
        mirror = Response(
            request_id=record.request_id,
            principal=record.principal,
            conversation_id=record.conversation_id,
            meta=record.meta,
            epoch=record.epoch,
            replay_max_events=self.replay_max_events,
            replay_max_bytes=self.replay_max_bytes,
            on_overflow=self._on_overflow,
            response_id=record.response_id,
            mirror=True,
            start_seq=start,
        )
        mirror.owner = record.owner
        for event in events:
            mirror.relay(event)
        backend.add(mirror)
        tg = self._tg
        if tg is None or session.closed:
            backend.discard(mirror)
            return None
        if mirror.running:
            self._tasks += 1
            tg.start_soon(self._follow, mirror, record, name=f"mirror {mirror.id}")
        if attach:
            replay = mirror.replay(last_seq if last_seq is not None else mirror.seq)
            self._attach(mirror, session)
            for event in replay or ():
                session.sink.push(event)
        else:
            self._set_expiry(mirror, self._clock() + max(self.resume_window_s, 1.0))
        return mirror

    async def _follow(self, mirror: Response, record: RemoteRecord) -> None:
        try:
            with mirror.cancel_scope:
                try:
                    async with aclosing(self._backend.follow(record, mirror.seq)) as events:
                        async for event in events:
                            mirror.relay(event)
                            if not mirror.running:
                                break
                except Exception as exc:
                    # The backend gave up (its own retries exhausted): this copy ends
                    # here; the owner's log is not touched.
                    mirror.finish(
                        Status.FAILED, Reason.UPSTREAM_ERROR, error=exc.with_traceback(None)
                    )
            if mirror.done is not None and mirror.state is not State.FORGOTTEN:
                self._backend.ended(mirror)
                self._retain_ended(mirror)
        finally:
            self._tasks -= 1
            self._notify()

    def _mirror_detached(self, mirror: Response) -> None:
        if mirror.running:
            self._signal_owner(mirror, ControlOp.DETACH)
        # Kept a while for a resume here; the owner decides when the response expires.
        self._set_expiry(mirror, self._clock() + max(self.resume_window_s, 1.0))

    def _owner_of(self, mirror: Response) -> str:
        return mirror.owner or ""

    def _signal_owner(self, mirror: Response, op: ControlOp) -> None:
        tg = self._tg
        if tg is not None:
            tg.start_soon(self._send_quietly, self._owner_of(mirror), Control(op, mirror.id))

    async def _send_quietly(self, owner: str, control: Control) -> None:
        # Attach/detach only steer the owner's detach window: losing one costs at
        # most an expiry the window would have applied anyway.
        with contextlib.suppress(SessionError):
            await self._backend.send(owner, control)

    def _on_control(self, control: Control) -> None:
        response = self._backend.get(control.response_id)
        if response is None or response.mirror or not response.running:
            return
        if control.op is ControlOp.CANCEL:
            self._end(response, Status.CANCELLED, control.reason or Reason.CLIENT_CANCELLED)
        elif control.op is ControlOp.ATTACH:
            response.remote_followers += 1
            response.deadline = None
        elif control.op is ControlOp.DETACH:
            response.remote_followers = max(0, response.remote_followers - 1)
            if response.remote_followers == 0 and not response.attached:
                if self.resume_window_s == 0:
                    self._end(response, Status.CANCELLED, Reason.CLIENT_DISCONNECTED)
                else:
                    self._set_expiry(response, self._clock() + self.resume_window_s)
        self._notify()

    async def _produce(self, response: Response, produce: Produce) -> None:
        try:
            info: FinishInfo | None = None
            try:
                with response.cancel_scope:
                    info = await produce(response)
            except Exception as exc:
                # Done keeps the error for the resume window, and its traceback would
                # keep every frame it passed through, locals included: this one, which
                # holds the response, which holds the Done (a reference cycle). Bench:
                # objects left to the cyclic collector in the cancel scenario ~6,600
                # -> ~2,800, none per answer (bench/README.md optimisation log).
                error = exc.with_traceback(None)
                self._end(response, Status.FAILED, Reason.UPSTREAM_ERROR, error=error)
            if info is not None:
                self._end(
                    response,
                    info.status,
                    info.reason,
                    finish_reason=info.finish_reason,
                    input_tokens=info.input_tokens,
                    output_tokens=info.output_tokens,
                )
        finally:
            # Only reached unended when the whole task group is cancelled.
            self._end(response, Status.INCOMPLETE, Reason.SERVER_SHUTDOWN)
            self._tasks -= 1
            self._notify()

    def _end(
        self,
        response: Response,
        status: Status,
        reason: str | None,
        *,
        finish_reason: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        error: Exception | None = None,
    ) -> Done | None:
        """Emit an owned response's one ``Done`` and release its slots; no-op if ended."""
        if not response.running or response.mirror:
            return None
        if status is not Status.COMPLETED:
            # The synchronous abort closes the upstream in this very turn; the
            # cancelled scope then unwinds the producer, closing it the orderly way.
            response.abort()
            response.cancel_scope.cancel()
        done = response.finish(
            status,
            reason,
            finish_reason=finish_reason,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            error=error,
        )
        self._running.pop(response.id, None)
        self._backend.ended(response)
        self._retain_ended(response)
        self._notify()
        return done

    def _retain_ended(self, response: Response) -> None:
        if response.state is State.FORGOTTEN:
            return
        if self.resume_window_s == 0:
            self._forget(response)
        else:
            self._set_expiry(response, self._clock() + self.resume_window_s)

    def _forget(self, response: Response) -> None:
        if response.mirror and response.running:
            if response.attached:
                self._signal_owner(response, ControlOp.DETACH)
            response.cancel_scope.cancel()  # stop following; the owner goes on
        self._backend.discard(response)
        session = self._sessions.get(response.attached_to or "")
        if session is not None:
            session.responses.pop(response.id, None)
        response.forget()
        self._notify()

    def _on_overflow(self, response: Response) -> None:
        # Detached and the buffer dropped events the client never got: resuming
        # is impossible, so stop paying for the upstream.
        self._end(response, Status.CANCELLED, Reason.BUFFER_OVERFLOW)
        self._forget(response)

    def _set_expiry(self, response: Response, at: float) -> None:
        response.deadline = at
        heapq.heappush(self._heap, (at, next(self._heap_order), response))
        if at < self._planned:
            self._replan.set()

    def _expire_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, response = heapq.heappop(heap)
            if response.deadline != at:
                continue  # superseded: re-attached, re-planned or forgotten
            self._end(response, Status.CANCELLED, Reason.RESUME_EXPIRED)
            self._forget(response)

    async def _expiry_loop(self) -> None:
        while True:
            self._expire_due(self._clock())
            self._replan = replan = anyio.Event()
            self._planned = self._heap[0][0] if self._heap else math.inf
            if self._planned == math.inf:
                await replan.wait()
            else:
                with anyio.move_on_after(max(0.0, self._planned - self._clock())):
                    await replan.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
