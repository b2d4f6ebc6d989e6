"""A message rate: a token bucket, one token per message.

Owned by whoever it limits: one per socket (the endpoint's), one per client key in
:class:`~gateway.limits.LocalKeyLimits`. Nothing here is a module global.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio


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
