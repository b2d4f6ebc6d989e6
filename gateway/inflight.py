"""Counts in-flight HTTP streams so a drain can let them finish before uvicorn stops,
and ends those still running at the drain deadline (each says so to its client)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio

# After the deadline, how long the cut streams get to write their last event.
_CUT_GRACE_S = 1.0


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._cutters: dict[int, Callable[[], None]] = {}
        self._next_key = 0

    @property
    def count(self) -> int:
        return self._count

    @contextmanager
    def track(self, cut: Callable[[], None] | None = None) -> Iterator[None]:
        """``cut`` is called if the stream is still running at the drain deadline."""
        if self._count == 0:
            self._idle = anyio.Event()
        self._count += 1
        key = self._next_key
        self._next_key += 1
        if cut is not None:
            self._cutters[key] = cut
        try:
            yield
        finally:
            self._cutters.pop(key, None)
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def drain(self, deadline: float) -> None:
        """A lifecycle drain hook: wait until nothing is in flight or the deadline; then
        cut what is left and give it a moment to write its ending."""
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await self._idle.wait()
        if self._count == 0:
            return
        for cut in list(self._cutters.values()):
            cut()
        with anyio.move_on_after(_CUT_GRACE_S):
            await self._idle.wait()
