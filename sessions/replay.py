"""Bounded replay buffer of one response's events (by count and bytes; TTL is the manager's).

Deltas are held as their bare text, not as event objects. A retained response may
hold thousands of them for the whole resume window, and every object that can
reference others is tracked by the cyclic garbage collector: at a few thousand
tokens per second, tracked deltas made each full collection walk hundreds of
thousands of objects, and those pauses showed up as tens of milliseconds of
added latency on every live stream. A ``str`` is never tracked, and the seq of
each held event follows from its position, since seqs have no gaps.
Bench (bench/README.md optimisation log, c=100): with ``gc.freeze()`` this took
WebSocket added time to first token p99 from +128 to +6.9 ms.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from sessions.events import EVENT_OVERHEAD_BYTES, Delta, ResponseEvent

_Held = str | ResponseEvent  # a Delta is held as its text


class ReplayBuffer:
    """The most recent events of one response, oldest evicted first.

    Events must be appended in strictly increasing ``seq`` order without gaps.
    The newest event is always kept, even if it alone exceeds ``max_bytes``.
    """

    __slots__ = (
        "_events",
        "_evicted",
        "_max_bytes",
        "_max_events",
        "_nbytes",
        "_next_seq",
        "_response_id",
    )

    def __init__(self, max_events: int, max_bytes: int, *, start_seq: int = 0) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("replay buffer bounds must be positive")
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._events: deque[_Held] = deque()
        self._response_id = ""  # learnt from the first event: all belong to one response
        self._nbytes = 0
        self._evicted = 0
        self._next_seq = start_seq

    def __len__(self) -> int:
        return len(self._events)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def evicted(self) -> int:
        """How many events were dropped so far (for metrics)."""
        return self._evicted

    @property
    def first_seq(self) -> int | None:
        """Seq of the oldest event still held, ``None`` when empty."""
        return self._next_seq - len(self._events) if self._events else None

    @property
    def next_seq(self) -> int:
        """Seq the next appended event must have."""
        return self._next_seq

    def append(self, event: ResponseEvent) -> int:
        """Add ``event``; returns how many old events were evicted to make room."""
        if event.seq != self._next_seq:
            raise ValueError(f"seq {event.seq} appended, {self._next_seq} expected")
        self._next_seq = event.seq + 1
        self._response_id = event.response_id
        events = self._events
        events.append(event.text if type(event) is Delta else event)
        self._nbytes += event.nbytes
        dropped = 0
        while len(events) > 1 and (
            len(events) > self._max_events or self._nbytes > self._max_bytes
        ):
            self._nbytes -= _nbytes(events.popleft())
            dropped += 1
        self._evicted += dropped
        return dropped

    def since(self, last_seq: int) -> list[ResponseEvent] | None:
        """Every event with ``seq > last_seq``, or ``None`` if any of them is gone.

        ``None`` too when ``last_seq`` lies in the future (the caller is confused)
        or before ``start_seq - 1`` (those events were never held here).
        """
        events = self._events
        if last_seq >= self._next_seq:
            return None
        first = self._next_seq - len(events)
        if last_seq + 1 < first:
            return None
        response_id = self._response_id
        return [
            Delta(response_id, seq, held) if isinstance(held, str) else held
            for seq, held in enumerate(islice(events, last_seq + 1 - first, None), last_seq + 1)
        ]


def _nbytes(held: _Held) -> int:
    return EVENT_OVERHEAD_BYTES + len(held) if isinstance(held, str) else held.nbytes
