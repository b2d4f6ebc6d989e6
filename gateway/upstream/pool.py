"""Keep-alive connections per origin, a cap on open connections, and the request itself.

Idle connections are reused newest first (the warmest, least likely to have been
closed by the server) and dropped after ``keepalive_expiry`` seconds idle: set it
below the upstream's own idle timeout (uvicorn-based servers such as vLLM close
after 5 s), so that a request is not sent on a connection the server is closing
at that very moment. Expiry happens on time, not only when the pool is next
used: one timer per pool, armed while anything is idle, closes the connections
whose time is up (an idle gateway keeps no socket past it, nor one in
CLOSE_WAIT), waking once per expiry period at most.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass

import anyio

from gateway.upstream.connection import Connection, Origin
from gateway.upstream.errors import ConnectError, ConnectTimeout, PoolTimeout, ProtocolError
from gateway.upstream.exchange import Exchange


@dataclass(frozen=True, slots=True)
class TransportTimeouts:
    """Seconds; ``None`` waits forever. ``read`` bounds every wait for response bytes."""

    connect: float | None = 5.0
    read: float | None = 30.0
    write: float | None = 5.0
    pool: float | None = 5.0


@dataclass(frozen=True, slots=True)
class PoolLimits:
    max_connections: int | None = 1000
    max_keepalive: int | None = 100
    keepalive_expiry: float | None = 4.0


class ConnectionPool:
    def __init__(
        self, *, ssl_context: ssl.SSLContext | None, limits: PoolLimits | None = None
    ) -> None:
        self._ssl_context = ssl_context
        self._limits = limits or PoolLimits()
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._open: set[Connection] = set()
        self._connecting = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._sweep: asyncio.TimerHandle | None = None  # armed while a connection is idle

    @property
    def open_connections(self) -> int:
        return len(self._open)

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    async def request(
        self,
        origin: Origin,
        head: bytes,
        body: bytes,
        timeouts: TransportTimeouts,
        *,
        head_only: bool = False,
        server_hostname: str | None = None,
    ) -> Exchange:
        """Send one request; return its :class:`Exchange` once the response head arrived.

        ``head`` is the request line and headers, ``body`` the whole body. On any
        failure (or cancellation) the connection is dropped, never reused.
        """
        connection = await self._acquire(origin, timeouts, server_hostname)
        exchange = Exchange(connection, timeouts.read, head_only=head_only)
        connection.start(exchange)
        try:
            await connection.write(head + body if len(body) < 65536 else head, timeouts.write)
            if len(body) >= 65536:
                await connection.write(body, timeouts.write)
            await exchange.read_head()
        except BaseException:
            exchange.abort()
            exchange.close()
            raise
        return exchange

    async def aclose(self) -> None:
        self._closed = True
        self._cancel_sweep()
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()
        self._idle_count = 0
        for waiter in self._slot_waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- Owner: what connections report ---------------------------------------------------

    def recycle(self, connection: Connection) -> None:
        limit = self._limits.max_keepalive
        if self._closed or (limit is not None and self._idle_count >= limit):
            connection.close()
            return
        connection.idle_since = connection.loop.time()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1
        if self._sweep is None:
            self._arm_sweep(connection.loop)

    def forget(self, connection: Connection) -> None:
        if connection not in self._open:
            return
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            self._idle_count -= 1
        self._wake_slot_waiter()

    # --- internals -------------------------------------------------------------------------

    async def _acquire(
        self, origin: Origin, timeouts: TransportTimeouts, server_hostname: str | None
    ) -> Connection:
        if self._closed:
            raise ProtocolError("the upstream connection pool is closed")
        reused = self._take_idle(origin)
        if reused is not None:
            return reused
        await self._reserve_slot(timeouts.pool)
        try:
            connection = await self._connect(origin, timeouts.connect, server_hostname)
        finally:
            self._connecting -= 1
        self._open.add(connection)
        return connection

    def _arm_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake when the oldest idle connection expires (nothing to do without expiry)."""
        expiry = self._limits.keepalive_expiry
        if expiry is None or self._closed:
            return
        oldest = min((idle[0].idle_since for idle in self._idle.values() if idle), default=None)
        if oldest is not None:
            self._sweep = loop.call_at(oldest + expiry, self._expire_idle, loop)

    def _expire_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = None
        expiry = self._limits.keepalive_expiry
        assert expiry is not None  # armed only with an expiry
        now = loop.time()
        for idle in list(self._idle.values()):
            # Oldest first: each list is in the order its connections went idle.
            while idle and now - idle[0].idle_since >= expiry:
                connection = idle.pop(0)
                self._idle_count -= 1
                connection.close()
        self._arm_sweep(loop)

    def _cancel_sweep(self) -> None:
        sweep, self._sweep = self._sweep, None
        if sweep is not None:
            sweep.cancel()

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        expiry = self._limits.keepalive_expiry
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.is_stale():
                connection.abort()
                continue
            if expiry is not None and connection.loop.time() - connection.idle_since > expiry:
                connection.close()
                continue
            return connection
        return None

    async def _reserve_slot(self, timeout_s: float | None) -> None:
        limit = self._limits.max_connections
        try:
            with anyio.fail_after(timeout_s):
                while limit is not None and len(self._open) + self._connecting >= limit:
                    if not self._close_oldest_idle():
                        waiter = asyncio.get_running_loop().create_future()
                        self._slot_waiters.append(waiter)
                        try:
                            await waiter
                        finally:
                            if waiter in self._slot_waiters:
                                self._slot_waiters.remove(waiter)
                    if self._closed:
                        raise ProtocolError("the upstream connection pool is closed")
        except TimeoutError:
            raise PoolTimeout(f"no upstream connection free within {timeout_s:g} s") from None
        self._connecting += 1

    def _close_oldest_idle(self) -> bool:
        """Make room by closing an idle connection to any origin; False if there is none."""
        oldest: Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        oldest.close()
        return True

    def _wake_slot_waiter(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(
        self, origin: Origin, timeout_s: float | None, server_hostname: str | None
    ) -> Connection:
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        if tls and self._ssl_context is None:
            raise ConnectError(f"no TLS configuration for {origin}")
        try:
            with anyio.fail_after(timeout_s):
                _, connection = await loop.create_connection(
                    lambda: Connection(self, origin, loop),
                    origin.host,
                    origin.port,
                    ssl=self._ssl_context if tls else None,
                    server_hostname=(server_hostname or origin.host) if tls else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {origin} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ConnectError(f"cannot connect to {origin}: {reason}") from None
        return connection
