"""Per-key limits shared by every instance through Redis: a
:class:`~gateway.limits.KeyLimits`.

Keys (see :mod:`gateway.scaleout.keys`):

- ``sockets:<key>``: a sorted set of the key's open sockets on every instance,
  each scored with the time its entry lapses (now + the owner lease). Every
  instance re-scores its own sockets each third of the lease, so the sockets of
  an instance that died stop counting within one lease; an admission first drops
  lapsed entries, then counts, then adds, in one script.
- ``rate:<key>``: the key's message token bucket (tokens, stamp), refilled and
  spent in one script on Redis's own clock, so instances' clocks do not matter.

While Redis is unreachable the shared counts are not consulted (fail open): each
instance still enforces its own per-socket bucket and per-key socket count, and
new responses are refused anyway (the session store is down).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.scaleout.keys import Keys

_log = structlog.get_logger("gateway.limits")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1] sockets zset; ARGV: member, limit, lease ms. 1 = admitted.
_ADMIT = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
return 1
"""
)

# KEYS[1..n] sockets zsets; ARGV[1] lease ms, ARGV[2..n+1] members. Re-scores them,
# adding those missing: a socket admitted while Redis was unreachable counts again once
# it is back (one released during this very refresh is removed again right after).
_REFRESH = (
    _NOW_MS
    + """
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, 2 * lease)
end
return #KEYS
"""
)

# KEYS[1] bucket hash; ARGV: rate (tokens per ms), burst. Returns the wait in ms ("0": ok).
_TAKE = (
    _NOW_MS
    + """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1]) or burst
local stamp = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return tostring(wait)
"""
)


class RedisKeyLimits:
    """Per-key socket counts and message buckets in Redis at ``url``.

    ``instance_id`` names this process's socket entries; ``lease_s`` is how long a
    socket of a dead instance keeps counting.
    """

    def __init__(self, url: str, *, prefix: str, instance_id: str, lease_s: float) -> None:
        self._url = url
        self._keys = Keys(prefix)
        self._id = instance_id
        self._lease_ms = max(1, int(lease_s * 1000))
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self._mine: dict[str, str] = {}  # member -> key: this instance's open sockets

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        client = aioredis.from_url(
            self._url,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=10,
        )
        self._redis = client
        self._scripts = {
            "admit": client.register_script(_ADMIT),
            "refresh": client.register_script(_REFRESH),
            "take": client.register_script(_TAKE),
        }
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._refresh_loop)
                try:
                    yield
                finally:
                    with anyio.move_on_after(1.0, shield=True):
                        await self._release_all()
                    tg.cancel_scope.cancel()
        finally:
            self._redis = None
            with anyio.move_on_after(1.0, shield=True):
                await client.aclose()

    def _member(self, socket_id: str) -> str:
        return f"{self._id}/{socket_id}"

    async def admit_socket(self, key: str, socket_id: str, limit: int) -> bool:
        member = self._member(socket_id)
        self._mine[member] = key
        try:
            admitted = await self._scripts["admit"](
                keys=[self._keys.sockets(key)], args=[member, limit, self._lease_ms]
            )
        except _UNREACHABLE:
            _log.warning("limits.redis_unreachable", limit="sockets_per_key")
            return True  # fail open: this instance's own count still applies
        if not admitted:
            del self._mine[member]
        return bool(admitted)

    async def release_socket(self, key: str, socket_id: str) -> None:
        member = self._member(socket_id)
        if self._mine.pop(member, None) is None or self._redis is None:
            return
        with contextlib.suppress(*_UNREACHABLE):  # else it lapses within a lease
            await self._redis.zrem(self._keys.sockets(key), member)

    async def take(self, key: str, rate: float, burst: int) -> float:
        try:
            wait_ms = await self._scripts["take"](
                keys=[self._keys.rate(key)], args=[repr(rate / 1000), burst]
            )
        except _UNREACHABLE:
            _log.warning("limits.redis_unreachable", limit="key_messages_per_second")
            return 0.0  # fail open: the per-socket bucket still applies
        return float(wait_ms) / 1000

    async def _refresh_loop(self) -> None:
        while True:
            await anyio.sleep(self._lease_ms / 3000)
            mine = dict(self._mine)
            if not mine:
                continue
            try:
                await self._scripts["refresh"](
                    keys=[self._keys.sockets(key) for key in mine.values()],
                    args=[self._lease_ms, *mine.keys()],
                )
                # Released while the refresh was under way: it may have re-added them.
                gone = [(m, key) for m, key in mine.items() if m not in self._mine]
                if gone:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for member, key in gone:
                            pipe.zrem(self._keys.sockets(key), member)
                        await pipe.execute()
            except _UNREACHABLE:
                continue

    async def _release_all(self) -> None:
        if self._redis is None or not self._mine:
            return
        with contextlib.suppress(*_UNREACHABLE):  # else they lapse within a lease
            async with self._redis.pipeline(transaction=False) as pipe:
                for member, key in self._mine.items():
                    pipe.zrem(self._keys.sockets(key), member)
                await pipe.execute(raise_on_error=False)
        self._mine.clear()
