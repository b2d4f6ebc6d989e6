"""One request/response on a connection: the response parser's callbacks and the body buffer.

The body is handed to the reader the way it arrived: every piece received since
the last read, in one ``bytes``. A reader that keeps up gets one network read per
call; one that falls behind catches up in a single call instead of one await per
piece. Past :data:`HIGH_WATER_BYTES` unread, the socket stops being read until
the reader catches up, so a stalled reader cannot make the buffer grow without
bound.

The read timeout ("the upstream went silent") costs nothing per piece: the
arrival time of the last bytes is noted, and one timer, armed only while the
reader waits, checks on firing whether it really expired and re-arms itself if
not. Cancelling and re-creating a timer per read, as socket-level timeouts do,
is the expensive alternative.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httptools

from gateway.upstream.errors import ProtocolError, ReadTimeout, TransportError

HIGH_WATER_BYTES = 256 * 1024

# Responses that never have a body, whatever their headers say.
_NO_BODY_STATUS = frozenset({204, 304})


class Link(Protocol):
    """What an exchange needs of the connection it runs on.

    :class:`gateway.upstream.connection.Connection` is the one implementation;
    naming only this keeps the dependency one way (connection -> exchange).
    """

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def origin(self) -> object: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def abort(self) -> None: ...

    def fail(self, error: TransportError) -> None: ...

    def finish(self, exchange: Exchange, *, reusable: bool) -> None: ...


class Exchange:
    """The response to one request sent on ``connection``, as it arrives.

    Made by :meth:`gateway.upstream.ConnectionPool.request`, which returns it once
    the status line and headers are in. The body is read with :meth:`read`;
    :meth:`close` must follow (it hands the connection back to the pool when the
    response was complete, and closes it otherwise). :meth:`abort` cuts the
    connection off synchronously, in the caller's event-loop turn.
    """

    __slots__ = (
        "_buffered",
        "_closed",
        "_connection",
        "_error",
        "_head_only",
        "_interim",
        "_loop",
        "_paused",
        "_pieces",
        "_read_timeout",
        "_timer",
        "_waiter",
        "_waiting_since",
        "complete",
        "head_complete",
        "headers",
        "keep_alive",
        "last_data",
        "parser",
        "reason",
        "status",
    )

    def __init__(
        self, connection: Link, read_timeout: float | None, *, head_only: bool = False
    ) -> None:
        self._connection = connection
        self._loop = connection.loop
        self._read_timeout = read_timeout
        self._head_only = head_only
        # Released on close: the parser references this exchange (a reference cycle
        # would leave every finished exchange to the cyclic garbage collector).
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_complete = False
        self.complete = False
        self.keep_alive = False
        self.last_data = 0.0  # loop time of the last bytes received (set by the connection)
        self._interim = False  # inside a 1xx response, which precedes the real one
        self._pieces: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: TransportError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._waiting_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def origin(self) -> str:
        return str(self._connection.origin)

    # --- reading (the consumer's side) ------------------------------------------------

    async def read_head(self) -> None:
        """Wait for the status line and headers."""
        while not self.head_complete:
            if self._error is not None:
                raise _fresh(self._error)
            await self._wait()

    async def read(self) -> bytes:
        """Body bytes received since the last call, in one piece; ``b""`` once the body ended."""
        while True:
            pieces = self._pieces
            if pieces:
                self._pieces = []
                self._buffered = 0
                if self._paused:
                    self._paused = False
                    self._connection.resume_reading()
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if self.complete:
                return b""
            if self._error is not None:
                raise _fresh(self._error)
            await self._wait()

    def abort(self) -> None:
        """Cut the connection off now (the upstream sees it close this turn); never raises.

        A no-op once :meth:`close` ran: the connection may serve another request by then.
        """
        if not self._closed:
            self._connection.abort()

    def close(self) -> None:
        """Release the connection: back to the pool if the response was complete, else closed.

        Idempotent. Unread body bytes of a complete response are simply dropped.
        """
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        self._pieces = []
        self.parser = None
        reusable = self.complete and self.keep_alive and self._error is None
        self._connection.finish(self, reusable=reusable)

    # --- the connection's side --------------------------------------------------------

    def fail(self, error: TransportError) -> None:
        """The connection broke: a waiting reader gets ``error`` (a complete response is kept)."""
        if self._error is None and not self.complete:
            self._error = error
            self._wake()

    def eof(self) -> None:
        """The peer closed its side: that ends a body delimited by the connection's close."""
        if self.head_complete and not self.complete and self._delimited_by_close():
            self.complete = True
            self.keep_alive = False
            self._wake()
        else:
            self.fail(ProtocolError(f"{self.origin} closed the connection mid-response"))

    # --- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # Bytes after the response: this connection's framing cannot be trusted.
            self.keep_alive = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None  # called from within parser.feed_data
        status = parser.get_status_code()
        if status < 200:
            # 1xx (say, 103 Early Hints): informational, the real response follows.
            self._interim = True
            self.headers = []
            self.reason = b""
            return
        self.status = status
        self.keep_alive = parser.should_keep_alive()
        self.head_complete = True
        if self._head_only:
            # httptools cannot be told that a HEAD response has no body; stop here
            # and do not reuse the connection rather than misread the next response.
            self.complete = True
            self.keep_alive = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._pieces.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER_BYTES and not self._paused:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if not self.complete:
            self.complete = True
            self._wake()

    # --- internals --------------------------------------------------------------------

    def _delimited_by_close(self) -> bool:
        if self.status in _NO_BODY_STATUS:
            return False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True

    async def _wait(self) -> None:
        loop = self._loop
        waiter = loop.create_future()
        self._waiter = waiter
        timeout = self._read_timeout
        if timeout is not None:
            self._waiting_since = now = loop.time()
            if self._timer is None:
                self._timer = loop.call_at(now + timeout, self._check_timeout)
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _check_timeout(self) -> None:
        self._timer = None
        timeout = self._read_timeout
        if timeout is None or self._waiter is None or self._closed:
            return  # nobody waiting: the next wait arms a new timer
        deadline = max(self.last_data, self._waiting_since) + timeout
        if self._loop.time() >= deadline:
            self._connection.fail(ReadTimeout(f"{self.origin} sent nothing for {timeout:g} s"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_timeout)

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


def _fresh(error: TransportError) -> TransportError:
    """A new exception like the stored ``error``, to raise in its place.

    Raising the stored one would give it a traceback through the reader's frames,
    which hold this exchange, which holds the exception: a reference cycle keeping
    the whole answer (its task's frames, the session's response, the SDK's
    response) alive until the cyclic garbage collector came by. Every Stop ends an
    answer through here, so cancel-heavy load piled up such cycles, and the
    collections that freed them paused the event loop for milliseconds.
    Bench (bench/README.md optimisation log): with the Done and the producer kept
    without their tracebacks, objects left to the cyclic collector in the cancel
    scenario (``--quick``) went from ~6,600 to ~2,800, none of them per answer.
    """
    fresh = type(error)(*error.args)
    if error.__cause__ is not None:  # assigning None would also hide the context
        fresh.__cause__ = error.__cause__
    return fresh
