"""One HTTP/1.1 connection to an upstream, as an asyncio protocol.

Bytes go straight from the event loop's read callback into httptools (llhttp, the
parser uvicorn uses) and from there into the current :class:`Exchange`'s buffer:
no stream wrapper, no per-read task or timeout object in between. A connection
serves one exchange at a time and belongs to a :class:`~gateway.upstream.pool.
ConnectionPool`, which it tells when it can be reused and when it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from dataclasses import dataclass
from typing import Any, Protocol, cast

import anyio
import httptools

from gateway.upstream.errors import (
    ProtocolError,
    ReadError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from gateway.upstream.exchange import Exchange


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str  # "http" or "https"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def shutdown_now(sock: Any) -> None:
    """``shutdown(SHUT_RDWR)`` on a transport's socket; never raises.

    asyncio hands out a ``TransportSocket``, uvloop a ``PseudoSocket`` that refuses
    ``shutdown``; shutting down a ``dup`` of the descriptor works for both, since
    a duplicate shares the connection.

    Bench (bench/README.md optimisation log, 5 ms/token, c=100): cutting the socket
    in the turn that handles a Stop took cancel -> upstream closed p99 from 83 / 113 /
    88 ms (WebSocket cancel / SSE hang-up / WebSocket close) to 33-60 / 28 / 18-28 ms.
    """
    if sock is None:
        return
    try:
        with sock.dup() as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or reset: nothing left to stop


class Owner(Protocol):
    """What a connection reports to its pool."""

    def recycle(self, connection: Connection) -> None:
        """The exchange ended cleanly: the connection may serve another request."""
        ...

    def forget(self, connection: Connection) -> None:
        """The connection is closed or closing: it no longer counts."""
        ...


class Connection(asyncio.Protocol):
    def __init__(self, owner: Owner, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.origin = origin
        self.loop = loop
        self.closed = False
        self.idle_since = 0.0
        self._transport: asyncio.Transport | None = None
        self._exchange: Exchange | None = None
        self._drained: asyncio.Future[None] | None = None  # set while writing is paused

    # --- used by the pool and the exchange ----------------------------------------------

    def start(self, exchange: Exchange) -> None:
        self._exchange = exchange

    async def write(self, data: bytes, timeout_s: float | None) -> None:
        transport = self._transport
        if self.closed or transport is None:
            raise ReadError(f"{self.origin} closed the connection")
        transport.write(data)
        drained = self._drained
        if drained is not None:
            # The kernel's buffer is full (a large body): wait, within the write timeout.
            try:
                with anyio.fail_after(timeout_s):
                    await drained
            except TimeoutError:
                raise WriteTimeout(f"sending to {self.origin} timed out") from None
            if self.closed:
                raise WriteError(f"{self.origin} closed the connection")

    def finish(self, exchange: Exchange, *, reusable: bool) -> None:
        if self._exchange is exchange:
            self._exchange = None
        if reusable and not self.closed:
            self.owner.recycle(self)
        else:
            self.close()

    def fail(self, error: TransportError) -> None:
        """End the current exchange with ``error`` and drop the connection."""
        exchange = self._exchange
        if exchange is not None:
            exchange.fail(error)
        self.abort()

    def close(self) -> None:
        """Close politely (what is written is still sent); idempotent."""
        if not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.close()
            self.owner.forget(self)

    def abort(self) -> None:
        """Close now, discarding buffers: the peer sees the connection end this turn.

        ``transport.abort()`` alone closes the socket only on the loop's next
        iteration; the shutdown sends the FIN before this call returns.
        """
        transport = self._transport
        was_closed, self.closed = self.closed, True
        if transport is not None:
            if not was_closed:
                shutdown_now(transport.get_extra_info("socket"))
            transport.abort()
        if not was_closed:
            self.owner.forget(self)

    def is_stale(self) -> bool:
        """An idle connection with bytes or an EOF waiting: the server is closing it.

        The loop may not have run the EOF callback yet; the kernel already knows.
        """
        if self.closed or self._transport is None:
            return True
        sock = self._transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Each SSE event is a small write upstream and must not wait for Nagle.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        parser = exchange.parser if exchange is not None else None
        if exchange is None or parser is None:
            # An idle connection has nothing to say; whatever this is, do not reuse it.
            self.abort()
            return
        exchange.last_data = self.loop.time()
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(ProtocolError(f"{self.origin} switched protocols unasked"))
        except httptools.HttpParserError as exc:
            self.fail(ProtocolError(f"{self.origin} sent a malformed response ({exc})"))

    def eof_received(self) -> bool:
        exchange = self._exchange
        if exchange is not None:
            exchange.eof()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        exchange = self._exchange
        if exchange is not None:
            exchange.fail(ReadError(f"{self.origin} closed the connection"))
        self.closed = True
        self.owner.forget(self)
        self.resume_writing()  # a writer waiting to drain sees ``closed``

    def pause_writing(self) -> None:
        self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)
