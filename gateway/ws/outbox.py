"""The one bounded outbox of a socket, and the writer that drains it.

Every frame for a client passes through here: session events pushed by response
tasks (the :class:`sessions.sink.Sink` protocol) and control frames from the
endpoint. Nothing else writes to the socket.

Backpressure: while the writer is blocked on a slow client, frames queue up. A
delta whose response already has a delta waiting in the queue is merged into it
(text appended, ``seq`` advanced to the newest), so a slow reader costs one
frame per response per write, not one per token, and loses nothing. Only text
deltas merge: reasoning and tool-call events (argument pieces included) queue as
frames of their own and end the merging into the text delta before them, so
pieces of different calls, or text and arguments, never share a frame. A merged
frame stops growing at ``MAX_MERGED_CHARS``, the size a response already splits
one huge upstream piece into (``sessions.events.MAX_DELTA_CHARS``), so no frame
carries more than that.

A slow consumer is one that takes too long to drain, not one that is sent a big
frame. The queue and the frames the writer has taken but not yet sent are counted
against ``max_bytes`` together; crossing it starts a deadline of ``drain_s`` on
the writer. Getting back to ``max_bytes`` or below (the client read) lifts the
deadline; reaching it drops everything, stops the writer at once (even mid-send)
and closes the socket with 4013: that client is too slow for this socket, and its
responses carry on for the resume window. A prompt reader therefore survives a
burst of any shape, e.g. one upstream chunk of megabytes, which arrives in one
event-loop turn. So that memory stays bounded meanwhile, crossing
``HARD_CAP_FACTOR * max_bytes`` closes 4013 at once, deadline or not.

A replay (``response.resume``, or ``response.create`` re-attaching a known
``request_id``) arrives all at once and may legitimately be larger than
``max_bytes``; it is charged to a separate allowance of ``replay_bytes`` instead
(the size of one full replay buffer), so that catching up is not mistaken for
being slow. Memory per socket is therefore bounded by ``HARD_CAP_FACTOR *
max_bytes + replay_bytes`` whatever the client does, and stays above ``max_bytes
+ replay_bytes`` for ``drain_s`` at most.

Merging happens before encoding, so a merged frame is encoded once. Bench: 83.9
tokens per frame at c=500 unpaced (bench/RESULTS.md of 2026-12-04).

A delta pushed while the writer is idle, with nothing queued, is sent at once
by the task that pushed it: the normal case on a socket that keeps up, one
token at a time. Handing it to the writer instead costs a task wake-up and a
loop iteration per token, and puts every token of a burst of upstream reads
behind the parsing of the whole burst: after any stall the first tokens waited
for the last ones. Only the first delta of an event-loop turn goes out this way;
the others queue and merge as before (a fast upstream delivers many tokens per
read, and a write per token would undo the merging), and so do replays. The
server's ``send`` only suspends when the transport is paused (the client is not
reading); if it does, the half-done send is handed to the writer, which finishes
it before anything queued, so the order of frames never changes. Other frames
(response start and end, control frames) stay with the writer: they are once per
response, and sending them at once too made time to first token worse in the
benchmark, for a reason not found yet (see bench/README.md). Bench for the
first-delta rule (bench/README.md optimisation log): WebSocket added per-token
latency p50 / p99 at c=100 +0.10 / +0.55 -> +0.03 / +0.43 ms in one same-run
comparison; +0.17 ms p99 in the full run of bench/RESULTS.md (2026-12-04).

The writer runs on a busy socket, so it is kept lean: it is woken through one
bare asyncio future (an ``anyio.Event`` per wake-up costs several times more),
takes one frame at a time, and runs inside a single cancel scope for its whole
life rather than one per batch. The gateway only runs on asyncio (uvicorn),
which is what makes the bare future fine here. Bench: part of the change that took
gateway CPU per paced token at c=100 from ~220 to ~138 µs (with the own upstream
transport; bench/README.md optimisation log).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any, Final, TypeAlias

import anyio

from gateway.ws import close_codes, wire
from sessions.events import EVENT_OVERHEAD_BYTES, MAX_DELTA_CHARS, Delta, SinkEvent

# Past the close decision, how long the writer may still spend flushing and closing:
# a client that stops reading entirely must not pin the connection forever.
CLOSE_GRACE_S: Final = 5.0

# A merged delta frame stops growing here and a new one starts: clients cap frame
# sizes too (the ``websockets`` library at 1 MiB by default), and one huge frame
# would make a client that catches up wait for all of it. The same bound as a
# response's split of one huge upstream piece, so merging never undoes the split.
MAX_MERGED_CHARS: Final = MAX_DELTA_CHARS

# Over ``max_bytes`` the client has ``drain_s`` to catch up; over this many times
# ``max_bytes`` it is closed at once (memory per socket stays bounded). Four times the
# default cap holds a 2 MB upstream chunk with room for what was queued before it.
HARD_CAP_FACTOR: Final = 4

# How long the outbox may stay over ``max_bytes`` when the endpoint does not say
# (``Settings.outbox_drain_timeout_ms`` does).
DEFAULT_DRAIN_S: Final = 10.0


class _Queued:
    """A queued frame with what it was charged: ``cost`` to the cap, ``credit`` to replay."""

    __slots__ = ("cost", "credit", "payload")

    def __init__(self, payload: SinkEvent | bytes, cost: int, credit: int) -> None:
        self.payload = payload
        self.cost = cost
        self.credit = credit

    def encode(self) -> bytes:
        payload = self.payload
        return payload if isinstance(payload, bytes) else wire.event(payload)


class _PendingDelta:
    """A delta frame not yet taken by the writer; later deltas merge into it."""

    __slots__ = ("chars", "cost", "credit", "parts", "response_id", "seq")

    def __init__(self, response_id: str, seq: int, text: str) -> None:
        self.response_id = response_id
        self.seq = seq
        self.parts = [text]
        self.chars = len(text)
        self.cost = 0
        self.credit = 0

    def encode(self) -> bytes:
        parts = self.parts
        return wire.delta(
            self.response_id, self.seq, parts[0] if len(parts) == 1 else "".join(parts)
        )


_Send: TypeAlias = Callable[[bytes], Coroutine[Any, Any, None]]


class _InFlight:
    """A send begun by a pushing task that suspended: the writer finishes it."""

    __slots__ = ("cost", "credit", "pending", "send")

    def __init__(self, send: Coroutine[Any, Any, None], pending: Any, cost: int, credit: int):
        self.send = send
        self.pending = pending  # what the send's first step was waiting on
        self.cost = cost
        self.credit = credit


@types.coroutine
def _finish(inflight: _InFlight) -> Generator[Any, Any, None]:
    """Await ``inflight.send`` from where its first step suspended.

    That step ran in another task, which never waited on what the send yielded;
    the writer's task waits on it instead (the event loop needs nothing else to
    wake it), then the rest of the send runs as ``await`` would have run it.
    """
    send = inflight.send
    try:
        yield inflight.pending
    except BaseException:
        send.close()  # cancelled (overflow, close grace, shutdown): the frame is abandoned
        raise
    yield from send


class Outbox:
    """Bounded, merging frame queue of one socket; implements ``sessions.sink.Sink``."""

    __slots__ = (
        "_close",
        "_credit",
        "_drain_by",
        "_drain_s",
        "_entries",
        "_failure",
        "_grace_by",
        "_hard_bytes",
        "_inflight",
        "_max_bytes",
        "_nbytes",
        "_open",
        "_replay_bytes",
        "_replaying",
        "_send",
        "_send_scope",
        "_sent_this_turn",
        "_waiter",
        "frames_sent",
        "merged",
        "overflowed",
        "peak_bytes",
        "peak_replay_bytes",
    )

    def __init__(
        self, max_bytes: int, replay_bytes: int = 0, drain_s: float = DEFAULT_DRAIN_S
    ) -> None:
        self._max_bytes = max_bytes
        self._hard_bytes = HARD_CAP_FACTOR * max_bytes
        self._drain_s = drain_s
        self._drain_by: float | None = None  # while over ``max_bytes``: the 4013 deadline
        self._grace_by = math.inf  # after a close request: end of the flush
        self._replay_bytes = replay_bytes
        self._entries: deque[_Queued | _PendingDelta] = deque()
        self._open: dict[str, _PendingDelta] = {}  # response id -> its queued tail delta
        self._nbytes = 0  # charged to the cap: queued + taken-but-unsent
        self._credit = 0  # charged to the replay allowance, likewise
        self._replaying = False
        self._waiter: asyncio.Future[None] | None = None  # set while the writer waits
        self._close: tuple[int, str] | None = None
        self._send_scope: anyio.CancelScope | None = None
        self._send: _Send | None = None  # the writer's, while it runs
        self._inflight: _InFlight | None = None
        self._failure: Exception | None = None  # a send at once failed: the writer raises it
        self._sent_this_turn = False  # a delta went out at once in this event-loop turn
        self.peak_bytes = 0
        self.peak_replay_bytes = 0
        self.merged = 0
        self.frames_sent = 0
        self.overflowed = False

    @property
    def nbytes(self) -> int:
        """Bytes held against ``max_bytes`` (queued or being sent)."""
        return self._nbytes

    @property
    def closing(self) -> bool:
        return self._close is not None

    @property
    def draining(self) -> bool:
        """Over ``max_bytes``, with the drain deadline running."""
        return self._drain_by is not None

    # --- producers (synchronous, never block) ------------------------------------------

    def push(self, event: SinkEvent) -> None:
        """Queue a session event (the ``Sink`` protocol). Hot path for deltas."""
        if self._close is not None:
            return
        if type(event) is Delta:
            size = len(event.text)
            tail = self._open.get(event.response_id)
            if tail is not None and tail.chars + size <= MAX_MERGED_CHARS:
                if self._charge(tail, size):
                    tail.parts.append(event.text)
                    tail.chars += size
                    tail.seq = event.seq
                    self.merged += 1
                return
            entry = _PendingDelta(event.response_id, event.seq, event.text)
            if self._charge(entry, size + EVENT_OVERHEAD_BYTES) and not self._sent_at_once(entry):
                self._open[event.response_id] = entry
                self._append(entry)
            return
        # Any other event of a response ends merging into its queued delta, so that a
        # later delta never jumps ahead of it.
        self._open.pop(event.response_id, None)
        queued = _Queued(event, 0, 0)
        if self._charge(queued, EVENT_OVERHEAD_BYTES):
            self._append(queued)

    def push_frame(self, frame: dict[str, Any]) -> None:
        """Queue a control frame (session.created, error, pong, ...)."""
        self.push_bytes(wire.control(frame))

    def push_bytes(self, data: bytes) -> None:
        if self._close is not None:
            return
        queued = _Queued(data, 0, 0)
        if self._charge(queued, len(data)):
            self._append(queued)

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        """Charge what is pushed inside (synchronously) to the replay allowance."""
        self._replaying = True
        try:
            yield
        finally:
            self._replaying = False

    def close(self, code: int, reason: str | None = None) -> None:
        """Send what is queued, then close with ``code``. Later pushes are dropped."""
        if self._close is None:
            self._close = (code, reason or close_codes.REASONS.get(code, ""))
            self._wake()
            scope = self._send_scope
            if scope is not None:
                # A writer blocked on a client that stopped reading gets a bounded flush.
                self._grace_by = anyio.current_time() + CLOSE_GRACE_S
                scope.deadline = min(scope.deadline, self._grace_by)

    # --- writer side ---------------------------------------------------------------------

    def take(self) -> list[tuple[bytes, int, int]]:
        """Everything queued, encoded: ``(frame, cost, credit)``; report each via :meth:`sent`."""
        taken = []
        while (entry := self._pop()) is not None:
            taken.append((entry.encode(), entry.cost, entry.credit))
        return taken

    def sent(self, cost: int, credit: int = 0) -> None:
        self.frames_sent += 1
        if self.overflowed:
            return  # the overflow already dropped every charge
        self._nbytes -= cost
        self._credit -= credit
        if self._drain_by is not None and self._nbytes <= self._max_bytes:
            self._drained()

    async def wait(self) -> None:
        """Until something is queued or a close is requested."""
        if self._entries or self._close is not None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    # --- internals -------------------------------------------------------------------------

    def _sent_at_once(self, entry: _PendingDelta) -> bool:
        """Send ``entry`` from this task if the writer is idle with nothing queued.

        True when the entry is taken: sent, or begun and left to the writer.
        """
        send = self._send
        if send is None or self._waiter is None or self._entries:
            return False
        if self._sent_this_turn or self._replaying:
            return False  # queue it: the writer merges what follows into it
        self._sent_this_turn = True
        asyncio.get_running_loop().call_soon(self._next_turn)
        sending = send(entry.encode())
        try:
            pending = sending.send(None)
        except StopIteration:
            self.sent(entry.cost, entry.credit)
            return True
        except Exception as exc:
            # The peer is gone (or a bug): the writer raises it, as from its own send.
            self._failure = exc
        else:
            self._inflight = _InFlight(sending, pending, entry.cost, entry.credit)
        self._wake()
        return True

    def _next_turn(self) -> None:
        self._sent_this_turn = False

    def _append(self, entry: _Queued | _PendingDelta) -> None:
        self._entries.append(entry)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _pop(self) -> _Queued | _PendingDelta | None:
        """The oldest queued entry, no longer open to merging; ``None`` when empty."""
        entries = self._entries
        if not entries:
            return None
        entry = entries.popleft()
        if type(entry) is _PendingDelta and self._open.get(entry.response_id) is entry:
            del self._open[entry.response_id]
        return entry

    def _charge(self, entry: _Queued | _PendingDelta, size: int) -> bool:
        if self._replaying:
            credit = self._credit + size
            if credit <= self._replay_bytes:
                self._credit = credit
                entry.credit += size
                if credit > self.peak_replay_bytes:
                    self.peak_replay_bytes = credit
                return True
        total = self._nbytes + size
        if total > self._max_bytes:
            if total > self._hard_bytes:
                self._overflow()
                return False
            if self._drain_by is None:
                self._start_drain_deadline()
        self._nbytes = total
        entry.cost += size
        if total > self.peak_bytes:
            self.peak_bytes = total
        return True

    def _start_drain_deadline(self) -> None:
        """Over ``max_bytes``: the writer has ``drain_s`` to get back under it."""
        self._drain_by = drain_by = anyio.current_time() + self._drain_s
        scope = self._send_scope
        if scope is not None:
            scope.deadline = min(scope.deadline, drain_by)

    def _drained(self) -> None:
        """Back to ``max_bytes`` or below in time: no 4013 (a close's flush stays bounded)."""
        self._drain_by = None
        scope = self._send_scope
        if scope is not None:
            scope.deadline = self._grace_by

    def _overflow(self) -> None:
        self.overflowed = True
        self._drain_by = None
        self._entries.clear()
        self._open.clear()
        self._nbytes = self._credit = 0
        self._close = (close_codes.SLOW_CONSUMER, close_codes.REASONS[close_codes.SLOW_CONSUMER])
        self._wake()
        if self._send_scope is not None:
            # The writer is stuck sending to this client: stop it now, not after the send.
            self._send_scope.cancel()

    # --- the writer ------------------------------------------------------------------------

    async def run_writer(
        self,
        send: _Send,
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        """Drain the outbox into ``send`` until a close is requested, then close.

        The flush after a close request is bounded by ``CLOSE_GRACE_S``; an overflow
        cuts it short, even mid-send, and so does the drain deadline passing (which
        is an overflow). ``send``/``close`` may raise when the peer is gone; that
        ends the writer.
        """
        with anyio.CancelScope() as scope:
            self._send_scope = scope
            if self._close is not None:
                self._grace_by = anyio.current_time() + CLOSE_GRACE_S
            drain_by = self._drain_by
            scope.deadline = min(self._grace_by, math.inf if drain_by is None else drain_by)
            self._send = send
            try:
                await self._send_until_closing(send)
            finally:
                self._send = self._send_scope = None
                # A failure the writer never raised: its traceback holds this outbox.
                self._failure = None
                inflight, self._inflight = self._inflight, None
                if inflight is not None:
                    inflight.send.close()
        drain_by = self._drain_by
        if drain_by is not None and anyio.current_time() >= drain_by:
            self._overflow()  # the scope's deadline was the drain deadline: too slow
        assert self._close is not None  # only a close request or an overflow ends the loop
        code, reason = self._close
        with anyio.move_on_after(CLOSE_GRACE_S):
            await close(code, reason)

    async def _send_until_closing(self, send: _Send) -> None:
        pop = self._pop
        while True:
            if self._inflight is not None:
                inflight, self._inflight = self._inflight, None
                await _finish(inflight)
                self.sent(inflight.cost, inflight.credit)
                continue
            if self._failure is not None:
                self._raise_failure()
            entry = pop()
            if entry is None:
                if self._close is not None:
                    return
                await self.wait()
                continue
            await send(entry.encode())
            self.sent(entry.cost, entry.credit)

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        assert failure is not None
        try:
            raise failure
        finally:
            # The traceback holds this frame: holding the exception too would be a cycle.
            failure = None
