"""One streamed response: its lifecycle state, seq counter, replay buffer, sink and cancel scope.

Knows nothing of :class:`~sessions.session.Session`: it is attached to a sink and
remembers the id of the session that sink belongs to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from sessions.events import (
    MAX_DELTA_CHARS,
    Created,
    Delta,
    Done,
    ReasoningDelta,
    ResponseEvent,
    ResponseMeta,
    Status,
    ToolArgumentsDelta,
    ToolCallAdded,
    ToolCallDone,
)
from sessions.lifecycle import State, check
from sessions.replay import ReplayBuffer
from sessions.sink import Sink

Publish = Callable[[ResponseEvent], None]
"""Where an owned response's events go besides its buffer (a shared backend's batcher)."""


@dataclass(slots=True)
class TokenCounts:
    """Token counts known so far; ``produce`` may update them as the upstream reports.

    A response that ends early (cancelled, failed) reports what is known here.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None


def _pieces(text: str) -> list[str]:
    """``text`` in pieces of at most ``MAX_DELTA_CHARS`` (one piece, maybe empty, if short)."""
    if len(text) <= MAX_DELTA_CHARS:
        return [text]
    return [text[at : at + MAX_DELTA_CHARS] for at in range(0, len(text), MAX_DELTA_CHARS)]


def new_response_id() -> str:
    return "resp_" + secrets.token_urlsafe(16)


class Response:
    """A response's state. Created by :class:`~sessions.manager.SessionManager` only.

    The producer calls :meth:`emit_delta` (and may update :attr:`usage`), and may
    register :meth:`on_abort`; everything under "manager side" is the manager's.
    After the :class:`Done` nothing more is emitted: later ``emit_delta`` calls are
    ignored.

    A *mirror* is the local copy of a response another instance owns (shared
    backends only): no producer, its events arrive through :meth:`relay` with the
    owner's seqs, and it may start past seq 0 (a resume only fetches what is missed).
    """

    __slots__ = (
        "_abort",
        "_buffer",
        "_detached_seq",
        "_on_overflow",
        "_publish",
        "_seq",
        "_sink",
        "_state",
        "attached_to",
        "cancel_scope",
        "conversation_id",
        "created",
        "deadline",
        "done",
        "epoch",
        "finished",
        "id",
        "meta",
        "mirror",
        "notify_done",
        "owner",
        "principal",
        "remote_followers",
        "request_id",
        "usage",
    )

    def __init__(
        self,
        *,
        request_id: str,
        principal: str,
        conversation_id: str | None,
        meta: ResponseMeta,
        epoch: int,
        replay_max_events: int,
        replay_max_bytes: int,
        on_overflow: Callable[[Response], None],
        response_id: str | None = None,
        mirror: bool = False,
        start_seq: int = 1,
    ) -> None:
        self.id = new_response_id() if response_id is None else response_id
        self.request_id = request_id
        self.principal = principal
        self.conversation_id = conversation_id
        self.meta = meta
        self.epoch = epoch
        self.mirror = mirror
        self.usage = TokenCounts()
        self.created = Created(self.id, request_id, epoch, meta)
        self.done: Done | None = None
        # Set once the Done exists (the producer task may still be unwinding).
        self.finished = anyio.Event()
        # Entered by the manager around ``produce`` (or a mirror's follower); cancelling it
        # stops the upstream.
        self.cancel_scope = anyio.CancelScope()
        self._state = State.RUNNING
        self._seq = start_seq - 1
        self._buffer = ReplayBuffer(replay_max_events, replay_max_bytes, start_seq=start_seq)
        self._sink: Sink | None = None
        self._detached_seq = self._seq
        self._on_overflow = on_overflow
        self._abort: Callable[[], None] | None = None
        self._publish: Publish | None = None
        # --- the manager's bookkeeping ---
        self.attached_to: str | None = None  # id of the session whose sink is attached
        self.deadline: float | None = None  # when a detached/ended response is dropped
        self.remote_followers = 0  # sessions on other instances following it
        self.owner: str | None = None  # a mirror's owning instance
        # Sinks of sessions that cancelled it without being attached: they get the Done.
        self.notify_done: list[Sink] = []

    # --- read-only views -------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def seq(self) -> int:
        """Seq of the last event emitted (0 right after ``Created``)."""
        return self._seq

    @property
    def running(self) -> bool:
        return self._state is State.RUNNING

    @property
    def status(self) -> Status | None:
        return None if self.done is None else self.done.status

    @property
    def attached(self) -> bool:
        return self._sink is not None

    @property
    def buffer(self) -> ReplayBuffer:
        return self._buffer

    # --- producer side (hot path) ------------------------------------------------------

    def emit_delta(self, text: str) -> None:
        """Emit the next text delta: next seq, into the replay buffer, to the sink.

        Synchronous and cheap. Ignored once the response has ended. A text longer
        than ``MAX_DELTA_CHARS`` (one huge upstream chunk) becomes several deltas of
        at most that many characters, each with its own seq, so that no frame grows
        past what a client accepts and a resume can start between the pieces.
        """
        if self._state is not State.RUNNING:
            return
        if len(text) > MAX_DELTA_CHARS:
            for piece in _pieces(text):
                if self._state is not State.RUNNING:
                    return  # a piece overflowed a detached buffer: the response ended
                self._seq += 1
                self._deliver(Delta(self.id, self._seq, piece))
            return
        self._seq += 1
        self._deliver(Delta(self.id, self._seq, text))

    def emit_reasoning(self, text: str) -> None:
        """Emit a piece of reasoning text, like :meth:`emit_delta` (split likewise)."""
        for piece in _pieces(text):
            if self._state is not State.RUNNING:
                return
            self._seq += 1
            self._deliver(ReasoningDelta(self.id, self._seq, piece))

    def emit_tool_call(self, index: int, call_id: str, name: str) -> None:
        """Emit the start of the tool call ``index``, like :meth:`emit_delta`."""
        if self._state is not State.RUNNING:
            return
        self._seq += 1
        self._deliver(ToolCallAdded(self.id, self._seq, index, call_id, name))

    def emit_tool_arguments(self, index: int, delta: str, call_id: str = "") -> None:
        """Emit a piece of the arguments of the call ``index``, like :meth:`emit_delta`
        (split likewise: the pieces still concatenate to the call's arguments)."""
        for piece in _pieces(delta):
            if self._state is not State.RUNNING:
                return
            self._seq += 1
            self._deliver(ToolArgumentsDelta(self.id, self._seq, index, piece, call_id))

    def emit_tool_call_done(self, index: int, call_id: str, name: str, arguments: str) -> None:
        """Emit the end of the call ``index`` with its whole arguments, like :meth:`emit_delta`."""
        if self._state is not State.RUNNING:
            return
        self._seq += 1
        self._deliver(ToolCallDone(self.id, self._seq, index, call_id, name, arguments))

    def on_abort(self, callback: Callable[[], None] | None) -> None:
        """Register (or with ``None`` clear) what stops the upstream synchronously.

        Cancelling the producer's scope stops it only once its task runs again,
        possibly several event-loop turns later. When the manager ends the
        response by force (cancel, disconnect with no resume window, expiry,
        buffer overflow, drain deadline, shutdown) it calls ``callback`` first,
        synchronously, so the upstream connection closes in that same turn; the
        cancellation then unwinds the producer as usual. Called at most once;
        dropped when the response ends. Ignored once it has ended. Exceptions
        from it are swallowed: it only speeds up what the cancellation does anyway.
        """
        if self._state is State.RUNNING:
            self._abort = callback

    # --- manager side ------------------------------------------------------------------

    def publish_to(self, publish: Publish | None) -> None:
        """Also hand every event from now on to ``publish`` (set before ``Created``)."""
        self._publish = publish

    def publish_created(self) -> None:
        """Hand ``Created`` (seq 0) to the backend and the attached sink."""
        if self._publish is not None:
            self._publish(self.created)
        if self._sink is not None:
            self._sink.push(self.created)

    def abort(self) -> None:
        """Run the registered abort callback, once (best effort)."""
        callback, self._abort = self._abort, None
        if callback is not None:
            # Best effort: the cancelled scope stops the producer anyway.
            with contextlib.suppress(Exception):
                callback()

    def replay(self, last_seq: int) -> list[ResponseEvent] | None:
        """Every event with ``seq > last_seq`` (``Created`` included when ``last_seq < 0``).

        ``None`` when some of them were evicted (or, for a mirror, never fetched).
        """
        if last_seq < 0:
            tail = self._buffer.since(0)
            return None if tail is None else [self.created, *tail]
        return self._buffer.since(last_seq)

    def attach(self, sink: Sink, session_id: str) -> None:
        self.attached_to = session_id
        self._sink = sink

    def detach(self) -> None:
        self.attached_to = None
        self._sink = None
        self._detached_seq = self._seq

    def relay(self, event: ResponseEvent) -> None:
        """A mirror's next event, as the owner emitted it (seq included)."""
        if self._state is not State.RUNNING:
            return
        if type(event) is Done and event.seq > self._seq + 1:
            # An owner that died after delivering events it never logged: a follower
            # that had seen them logged ``owner_lost`` past them. This copy holds less,
            # and it ends right after what it holds.
            event = dataclasses.replace(event, seq=self._seq + 1)
        if event.seq != self._seq + 1:
            return  # a repeat of what the mirror already holds
        if type(event) is Done:
            self._end_with(event)
            return
        if type(event) is Created:
            return  # seq 0 is the mirror's own ``created``
        self._seq = event.seq
        self._deliver(event)

    def finish(
        self,
        status: Status,
        reason: str | None = None,
        *,
        finish_reason: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        error: Exception | None = None,
    ) -> Done | None:
        """Emit the one ``Done`` (RUNNING -> ENDED); ``None`` if it had already ended."""
        if self._state is not State.RUNNING:
            return None
        if input_tokens is not None:
            self.usage.input_tokens = input_tokens
        if output_tokens is not None:
            self.usage.output_tokens = output_tokens
        done = Done(
            self.id,
            self.request_id,
            self._seq + 1,
            status,
            reason,
            finish_reason,
            self.usage.input_tokens,
            self.usage.output_tokens,
            error,
        )
        self._end_with(done)
        return done

    def forget(self) -> None:
        """No longer retained (-> FORGOTTEN); idempotent."""
        if self._state is not State.FORGOTTEN:
            check(self._state, State.FORGOTTEN)
            self._state = State.FORGOTTEN
            self.deadline = None
            self._abort = None

    # --- internals ----------------------------------------------------------------------

    def _deliver(self, event: ResponseEvent) -> None:
        evicted = self._buffer.append(event)
        publish = self._publish
        if publish is not None:
            publish(event)
        sink = self._sink
        if sink is not None:
            sink.push(event)
        elif evicted and self._lost_while_detached():
            self._on_overflow(self)

    def _end_with(self, done: Done) -> None:
        check(self._state, State.ENDED)
        self._state = State.ENDED
        self._seq = done.seq
        self.done = done
        self._abort = None  # its stream is finished or being cancelled: let it go
        self._buffer.append(done)
        if self._publish is not None:
            self._publish(done)
        if self._sink is not None:
            self._sink.push(done)
        for sink in self.notify_done:
            if sink is not self._sink:
                sink.push(done)
        self.notify_done.clear()
        self.finished.set()

    def _lost_while_detached(self) -> bool:
        first = self._buffer.first_seq
        return first is not None and first > self._detached_seq + 1

    def __repr__(self) -> str:
        kind = "Mirror" if self.mirror else "Response"
        return (
            f"{kind}({self.id!r}, request_id={self.request_id!r}, seq={self._seq}, {self._state})"
        )
