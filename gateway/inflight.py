"""Counts in-flight HTTP streams so a drain can let them finish before uvicorn stops."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    @contextmanager
    def track(self) -> Iterator[None]:
        if self._count == 0:
            self._idle = anyio.Event()
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def drain(self, deadline: float) -> None:
        """A lifecycle drain hook: wait until nothing is in flight, or the deadline."""
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await self._idle.wait()
