"""The session manager: sessions, responses, idempotency, resume windows and drain.

Every producer runs in the manager's own task group, not the socket's, so a
response outlives its socket for the resume window yet nothing outlives
:meth:`SessionManager.running`. Deadlines (detach windows, retention of finished
responses) are kept in one heap served by one expiry task that sleeps until the
nearest deadline and is woken when an earlier one appears.

All methods except :meth:`~SessionManager.drain` are synchronous: the gateway
calls them from its socket tasks, and attach + replay happening without an
``await`` is what makes resume gap- and duplicate-free.
"""

from __future__ import annotations

import heapq
import itertools
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import anyio
from anyio.abc import TaskGroup

from sessions.errors import (
    ConversationBusy,
    Draining,
    DuplicateRequest,
    ReplayUnavailable,
    SessionClosed,
    TooManyResponses,
    UnknownResponse,
)
from sessions.events import Done, FinishInfo, Reason, ResponseMeta, ResumeResult, Status
from sessions.response import Response
from sessions.session import Session
from sessions.sink import Sink

Produce = Callable[[Response], Awaitable[FinishInfo]]
"""The gateway's coroutine: streams from upstream, calls ``response.emit_delta``."""

Clock = Callable[[], float]

_DEFAULT_META: Final = ResponseMeta(model="", provider="")


class SessionManager:
    """Owns every session and response of one process.

    ``resume_window_s``: how long a response survives its socket (and how long a
    finished one stays resumable and idempotent); 0 cancels at disconnect.
    ``clock`` must tick in seconds like ``anyio.current_time`` (deadlines passed to
    :meth:`drain` use it); waits are real-time sleeps of the clock's differences.
    """

    def __init__(
        self,
        *,
        resume_window_s: float = 30.0,
        replay_max_events: int = 10_000,
        replay_max_bytes: int = 2 * 1024 * 1024,
        max_concurrent_responses: int = 4,
        clock: Clock = anyio.current_time,
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
        self._draining = False
        self._tg: TaskGroup | None = None
        self._sessions: dict[str, Session] = {}
        self._responses: dict[str, Response] = {}  # retained, running or finished
        self._by_request: dict[tuple[str, str], Response] = {}
        self._conversations: dict[tuple[str, str], Response] = {}
        self._running: dict[str, Response] = {}
        self._tasks = 0
        self._changed = anyio.Event()
        self._heap: list[tuple[float, int, Response]] = []
        self._heap_order = itertools.count()
        self._planned = math.inf
        self._replan = anyio.Event()

    # --- counts (metrics, leak tests) -------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def sessions(self) -> int:
        """Open sessions."""
        return len(self._sessions)

    @property
    def active_responses(self) -> int:
        """Responses that have not emitted their ``Done`` yet."""
        return len(self._running)

    @property
    def producer_tasks(self) -> int:
        """Producer tasks still alive (a cancelled one may unwind after its ``Done``)."""
        return self._tasks

    @property
    def retained_responses(self) -> int:
        """Responses still known: running, or finished and within their window."""
        return len(self._responses)

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
            async with anyio.create_task_group() as tg:
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
            for response in list(self._responses.values()):
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
        await self.wait_idle()

    # --- sessions -----------------------------------------------------------------------

    def open_session(
        self, principal: str, sink: Sink, *, defaults: dict[str, object] | None = None
    ) -> Session:
        """Register a new socket's session. ``principal`` scopes ids and idempotency."""
        session = Session(principal, sink, defaults)
        self._sessions[session.id] = session
        return session

    def close_session(self, session: Session) -> None:
        """The socket is gone: detach its responses (idempotent).

        Running ones keep running for the resume window, buffering; with a window
        of 0 they are cancelled at once (``client_disconnected``).
        """
        if session.closed:
            return
        session.closed = True
        self._sessions.pop(session.id, None)
        attached = list(session.responses.values())
        session.responses.clear()
        for response in attached:
            response._detach()
            if not response.running:
                continue
            if self.resume_window_s == 0:
                self._end(response, Status.CANCELLED, Reason.CLIENT_DISCONNECTED)
            else:
                self._set_expiry(response, self._clock() + self.resume_window_s)

    # --- responses ------------------------------------------------------------------------

    def create_response(
        self,
        session: Session,
        request_id: str,
        *,
        produce: Produce,
        meta: ResponseMeta = _DEFAULT_META,
        conversation_id: str | None = None,
    ) -> tuple[Response, bool]:
        """Start a response, or re-attach the one this ``request_id`` already names.

        New: pushes ``Created`` to the session's sink synchronously, then runs
        ``produce`` in the manager's task group; exactly one ``Done`` follows,
        whatever happens. Returns ``(response, True)``.

        Known ``request_id`` (same principal) attached elsewhere or detached: it is
        attached to ``session``, its ``Created`` and every later event are replayed
        to the sink and it continues live; ``produce`` is not called. Returns
        ``(response, False)``. This works while draining too: it starts nothing.

        Raises :class:`DuplicateRequest` (already attached to this session),
        :class:`ReplayUnavailable` (known but no longer replayable whole),
        :class:`Draining`, :class:`TooManyResponses`, :class:`ConversationBusy`,
        :class:`SessionClosed`.
        """
        if session.closed:
            raise SessionClosed("session is closed")
        existing = self._by_request.get((session.principal, request_id))
        if existing is not None:
            if existing.session is session:
                raise DuplicateRequest(f"request_id {request_id!r} is already in progress")
            events = existing.replay(-1)
            if events is None:
                raise ReplayUnavailable(
                    f"request_id {request_id!r} can no longer be replayed whole; resume it"
                )
            self._attach(existing, session)
            for event in events:
                session.sink.push(event)
            return existing, False
        if self._draining:
            raise Draining("server is draining")
        tg = self._tg
        if tg is None:
            raise RuntimeError("SessionManager is not running")
        if session.running_count >= self.max_concurrent_responses:
            raise TooManyResponses(
                f"at most {self.max_concurrent_responses} concurrent responses per session"
            )
        conversation_key = None
        if conversation_id is not None:
            conversation_key = (session.principal, conversation_id)
            if conversation_key in self._conversations:
                raise ConversationBusy(f"conversation {conversation_id!r} has a running response")
        response = Response(
            request_id=request_id,
            principal=session.principal,
            conversation_id=conversation_id,
            meta=meta,
            epoch=self.epoch,
            replay_max_events=self.replay_max_events,
            replay_max_bytes=self.replay_max_bytes,
            on_overflow=self._on_overflow,
        )
        self._responses[response.id] = response
        self._by_request[(session.principal, request_id)] = response
        self._running[response.id] = response
        if conversation_key is not None:
            self._conversations[conversation_key] = response
        self._attach(response, session)
        session.sink.push(response.created)
        self._tasks += 1
        tg.start_soon(self._produce, response, produce, name=f"response {response.id}")
        return response, True

    def find(
        self, session: Session, *, response_id: str | None = None, request_id: str | None = None
    ) -> Response:
        """The principal's retained response by id or request_id, else :class:`UnknownResponse`."""
        response = None
        if response_id is not None:
            response = self._responses.get(response_id)
        elif request_id is not None:
            response = self._by_request.get((session.principal, request_id))
        if response is None or response.principal != session.principal:
            raise UnknownResponse("no such response")
        return response

    def cancel(
        self,
        session: Session,
        *,
        response_id: str | None = None,
        request_id: str | None = None,
        reason: str = Reason.CLIENT_CANCELLED,
    ) -> Response:
        """Cancel a running response now: its ``Done`` (``cancelled``) is emitted at once
        and its producer is cancelled. A no-op for a finished one.

        If the response is not attached to ``session``, its ``Done`` is pushed to
        ``session``'s sink as well, so the canceller always learns the outcome.
        Raises :class:`UnknownResponse`.
        """
        response = self.find(session, response_id=response_id, request_id=request_id)
        done = self._end(response, Status.CANCELLED, reason)
        if done is not None and response.session is not session:
            session.sink.push(done)
        return response

    def resume(self, session: Session, response_id: str, epoch: int, last_seq: int) -> ResumeResult:
        """Attach a response to ``session`` and replay every event with ``seq > last_seq``.

        Pushes the :class:`ResumeResult` to the sink first, then the replayed events,
        all synchronously, then live events continue; also returns the result.
        ``recovered`` is False (and nothing is attached) for an unknown, expired or
        foreign response, an epoch mismatch, or events no longer buffered.
        Resuming on the session it is already attached to replays anyway (the
        client asked for it); a response attached to another live session moves.
        """
        response = self._responses.get(response_id)
        events = None
        if response is not None and response.principal == session.principal and epoch == self.epoch:
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

    def _attach(self, response: Response, session: Session) -> None:
        previous = response.session
        if previous is not None and previous is not session:
            previous.responses.pop(response.id, None)
        response._attach(session)
        session.responses[response.id] = response
        if response.running:
            response._expires_at = None  # the stale heap entry is skipped when popped

    async def _produce(self, response: Response, produce: Produce) -> None:
        try:
            info: FinishInfo | None = None
            try:
                with response.cancel_scope:
                    info = await produce(response)
            except Exception as exc:
                # Done keeps the error for the resume window, and its traceback would
                # keep every frame it passed through, locals included: this one, which
                # holds the response, which holds the Done (a reference cycle).
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
        """Emit the response's one ``Done`` and release its slots; no-op if ended."""
        if not response.running:
            return None
        if status is not Status.COMPLETED:
            # The synchronous abort closes the upstream in this very turn; the
            # cancelled scope then unwinds the producer, closing it the orderly way.
            response._abort_producer()
            response.cancel_scope.cancel()
        done = response._finish(
            status,
            reason,
            finish_reason=finish_reason,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            error=error,
        )
        self._running.pop(response.id, None)
        if response.conversation_id is not None:
            key = (response.principal, response.conversation_id)
            if self._conversations.get(key) is response:
                del self._conversations[key]
        if response.id in self._responses:
            if self.resume_window_s == 0:
                self._forget(response)
            else:
                self._set_expiry(response, self._clock() + self.resume_window_s)
        self._notify()
        return done

    def _forget(self, response: Response) -> None:
        self._responses.pop(response.id, None)
        key = (response.principal, response.request_id)
        if self._by_request.get(key) is response:
            del self._by_request[key]
        session = response.session
        if session is not None:
            session.responses.pop(response.id, None)
        response._expires_at = None
        self._notify()

    def _on_overflow(self, response: Response) -> None:
        # Detached and the buffer dropped events the client never got: resuming
        # is impossible, so stop paying for the upstream.
        self._forget(response)
        self._end(response, Status.CANCELLED, Reason.BUFFER_OVERFLOW)

    def _set_expiry(self, response: Response, at: float) -> None:
        response._expires_at = at
        heapq.heappush(self._heap, (at, next(self._heap_order), response))
        if at < self._planned:
            self._replan.set()

    def _expire_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, response = heapq.heappop(heap)
            if response._expires_at != at:
                continue  # superseded: re-attached, re-planned or forgotten
            self._forget(response)
            self._end(response, Status.CANCELLED, Reason.RESUME_EXPIRED)

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
