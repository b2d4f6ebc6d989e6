"""One streamed response: its seq counter, replay buffer, sink and cancel scope."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from sessions.events import Created, Delta, Done, ResponseEvent, ResponseMeta, Status
from sessions.replay import ReplayBuffer
from sessions.sink import Sink

if TYPE_CHECKING:
    from sessions.session import Session


@dataclass(slots=True)
class Usage:
    """Token counts known so far; ``produce`` may update them as the upstream reports.

    A response that ends early (cancelled, failed) reports what is known here.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None


class Response:
    """A response's state. Created by :meth:`SessionManager.create_response` only.

    The producer calls :meth:`emit_delta` (and may update :attr:`usage`), and may
    register :meth:`on_abort`; everything else is driven by the manager. After the
    :class:`Done` nothing more is emitted: later ``emit_delta`` calls are ignored.
    """

    __slots__ = (
        "_abort",
        "_buffer",
        "_detached_seq",
        "_expires_at",
        "_on_overflow",
        "_seq",
        "_session",
        "_sink",
        "cancel_scope",
        "conversation_id",
        "created",
        "done",
        "epoch",
        "finished",
        "id",
        "meta",
        "principal",
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
    ) -> None:
        self.id = "resp_" + secrets.token_urlsafe(16)
        self.request_id = request_id
        self.principal = principal
        self.conversation_id = conversation_id
        self.meta = meta
        self.epoch = epoch
        self.usage = Usage()
        self.created = Created(self.id, request_id, epoch, meta)
        self.done: Done | None = None
        # Set once the Done exists (the producer task may still be unwinding).
        self.finished = anyio.Event()
        # Entered by the manager around ``produce``; cancelling it stops the upstream.
        self.cancel_scope = anyio.CancelScope()
        self._seq = 0
        self._buffer = ReplayBuffer(replay_max_events, replay_max_bytes, start_seq=1)
        self._sink: Sink | None = None
        self._session: Session | None = None
        self._detached_seq = 0
        self._expires_at: float | None = None
        self._on_overflow = on_overflow
        self._abort: Callable[[], None] | None = None

    # --- read-only views -------------------------------------------------------------

    @property
    def seq(self) -> int:
        """Seq of the last event emitted (0 right after ``Created``)."""
        return self._seq

    @property
    def running(self) -> bool:
        return self.done is None

    @property
    def status(self) -> Status | None:
        return None if self.done is None else self.done.status

    @property
    def attached(self) -> bool:
        return self._sink is not None

    @property
    def session(self) -> Session | None:
        """The session it is attached to, ``None`` while detached."""
        return self._session

    @property
    def buffer(self) -> ReplayBuffer:
        return self._buffer

    # --- producer side (hot path) ------------------------------------------------------

    def emit_delta(self, text: str) -> None:
        """Emit the next text delta: next seq, into the replay buffer, to the sink.

        Synchronous and cheap. Ignored once the response has ended.
        """
        if self.done is not None:
            return
        self._seq += 1
        event = Delta(self.id, self._seq, text)
        evicted = self._buffer.append(event)
        sink = self._sink
        if sink is not None:
            sink.push(event)
        elif evicted and self._lost_while_detached():
            self._on_overflow(self)

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
        if self.done is None:
            self._abort = callback

    # --- manager side ------------------------------------------------------------------

    def _abort_producer(self) -> None:
        callback, self._abort = self._abort, None
        if callback is not None:
            # Best effort: the cancelled scope stops the producer anyway.
            with contextlib.suppress(Exception):
                callback()

    def replay(self, last_seq: int) -> list[ResponseEvent] | None:
        """Every event with ``seq > last_seq`` (``Created`` included when ``last_seq < 0``).

        ``None`` when some of them were evicted.
        """
        if last_seq < 0:
            tail = self._buffer.since(0)
            return None if tail is None else [self.created, *tail]
        return self._buffer.since(last_seq)

    def _lost_while_detached(self) -> bool:
        first = self._buffer.first_seq
        return first is not None and first > self._detached_seq + 1

    def _attach(self, session: Session) -> None:
        self._session = session
        self._sink = session.sink

    def _detach(self) -> None:
        self._session = None
        self._sink = None
        self._detached_seq = self._seq

    def _finish(
        self,
        status: Status,
        reason: str | None = None,
        *,
        finish_reason: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        error: Exception | None = None,
    ) -> Done | None:
        """Emit the one ``Done``; returns it, or ``None`` if the response had already ended."""
        if self.done is not None:
            return None
        if input_tokens is not None:
            self.usage.input_tokens = input_tokens
        if output_tokens is not None:
            self.usage.output_tokens = output_tokens
        self._seq += 1
        done = Done(
            self.id,
            self.request_id,
            self._seq,
            status,
            reason,
            finish_reason,
            self.usage.input_tokens,
            self.usage.output_tokens,
            error,
        )
        self.done = done
        self._abort = None  # its stream is finished or being cancelled: let it go
        self._buffer.append(done)
        if self._sink is not None:
            self._sink.push(done)
        self.finished.set()
        return done

    def __repr__(self) -> str:
        state = "running" if self.done is None else self.done.status
        return f"Response({self.id!r}, request_id={self.request_id!r}, seq={self._seq}, {state})"
