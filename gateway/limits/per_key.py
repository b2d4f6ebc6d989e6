"""Limits counted per client key, across every socket of the key: the interface.

The per-socket bucket and the instance's :class:`~gateway.limits.SocketRegistry`
only see this process. What a client key may do in total -- how many sockets it
holds, how fast its sockets may start work -- must be counted wherever its sockets
are. :class:`KeyLimits` is that count; :class:`LocalKeyLimits` (one process, the
default) keeps it in this process, and the Redis implementation
(:class:`gateway.scaleout.limits.RedisKeyLimits`) shares it between instances.

Nothing here ever refuses a ``response.cancel``: a Stop frees work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from gateway.limits.rate import TokenBucket


class KeyLimits(Protocol):
    """Per-key counters. Keys are principal ids; ``socket_id`` is unique per socket."""

    def running(self) -> AbstractAsyncContextManager[None]:
        """Connect and run the counters' own tasks (the app's lifespan)."""
        ...

    async def admit_socket(self, key: str, socket_id: str, limit: int) -> bool:
        """Count ``socket_id`` against ``key``'s ``limit``; False (nothing counted) if full."""
        ...

    async def release_socket(self, key: str, socket_id: str) -> None:
        """The socket closed (idempotent)."""
        ...

    async def take(self, key: str, rate: float, burst: int) -> float:
        """Spend one of ``key``'s message tokens: 0.0 if allowed, else the seconds to wait."""
        ...


class LocalKeyLimits:
    """One process: the socket registry already counts sockets per key, so only the
    per-key message rate is kept here (one token bucket per key that spent one)."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield

    async def admit_socket(self, key: str, socket_id: str, limit: int) -> bool:
        return True  # the SocketRegistry's per-key count is the whole truth here

    async def release_socket(self, key: str, socket_id: str) -> None:
        return None

    async def take(self, key: str, rate: float, burst: int) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, burst)
        return bucket.take()
