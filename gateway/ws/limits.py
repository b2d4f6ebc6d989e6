"""Per-socket message rate (token bucket) and the registry of open sockets.

Both are plain objects owned by someone with a lifetime: the bucket by one
connection, the registry by the app's :class:`~gateway.services.Services`.
Nothing here is a module global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import anyio

_C = TypeVar("_C")


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per message."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = anyio.current_time
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class SocketRegistry(Generic[_C]):
    """The open sockets of one instance, counted in total and per client key.

    ``key`` is the principal id; ``None`` (an open gateway without client keys)
    is counted only against the instance limit, since everyone shares it.
    """

    def __init__(self, max_sockets: int, max_per_key: int) -> None:
        self._max = max_sockets
        self._max_per_key = max_per_key
        self._members: dict[_C, str | None] = {}
        self._per_key: dict[str, int] = {}
        self._empty = anyio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[_C]:
        return iter(list(self._members))

    def count(self, key: str) -> int:
        return self._per_key.get(key, 0)

    def add(self, conn: _C, key: str | None) -> bool:
        """Admit ``conn``; ``False`` (and nothing recorded) when a limit is reached."""
        if len(self._members) >= self._max:
            return False
        if key is not None:
            if self._per_key.get(key, 0) >= self._max_per_key:
                return False
            self._per_key[key] = self._per_key.get(key, 0) + 1
        self._members[conn] = key
        if self._empty.is_set():
            self._empty = anyio.Event()
        return True

    def remove(self, conn: _C) -> None:
        if conn not in self._members:
            return
        key = self._members.pop(conn)
        if key is not None:
            left = self._per_key[key] - 1
            if left:
                self._per_key[key] = left
            else:
                del self._per_key[key]
        if not self._members:
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()
