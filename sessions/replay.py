"""Bounded replay buffer of one response's events (by count and bytes; TTL is the manager's)."""

from __future__ import annotations

from collections import deque
from itertools import islice

from sessions.events import ResponseEvent


class ReplayBuffer:
    """The most recent events of one response, oldest evicted first.

    Events must be appended in strictly increasing ``seq`` order without gaps.
    The newest event is always kept, even if it alone exceeds ``max_bytes``.
    """

    __slots__ = ("_events", "_evicted", "_max_bytes", "_max_events", "_nbytes", "_next_seq")

    def __init__(self, max_events: int, max_bytes: int, *, start_seq: int = 0) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("replay buffer bounds must be positive")
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._events: deque[ResponseEvent] = deque()
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
        return self._events[0].seq if self._events else None

    @property
    def next_seq(self) -> int:
        """Seq the next appended event must have."""
        return self._next_seq

    def append(self, event: ResponseEvent) -> int:
        """Add ``event``; returns how many old events were evicted to make room."""
        if event.seq != self._next_seq:
            raise ValueError(f"seq {event.seq} appended, {self._next_seq} expected")
        self._next_seq = event.seq + 1
        events = self._events
        events.append(event)
        self._nbytes += event.nbytes
        dropped = 0
        while len(events) > 1 and (
            len(events) > self._max_events or self._nbytes > self._max_bytes
        ):
            self._nbytes -= events.popleft().nbytes
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
        first = events[0].seq if events else self._next_seq
        if last_seq + 1 < first:
            return None
        return list(islice(events, last_seq + 1 - first, None))
