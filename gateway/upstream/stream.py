"""The one upstream stream interface every adapter uses: open, read, abort, close.

An adapter gets an :class:`UpstreamStream` either by :func:`open_stream` (it
sends an ``httpx2`` request itself, as the Ollama adapter does) or by
:func:`adopt` (an SDK sent it and handed back the streamed ``httpx2.Response``).
Either way it then only calls :meth:`~UpstreamStream.read` (the next piece of
the body, ``b""`` at its end), :meth:`~UpstreamStream.abort` (cut the
connection off synchronously, this event-loop turn) and
:meth:`~UpstreamStream.aclose`, and sees one error family,
:class:`gateway.upstream.errors.TransportError`.

Behind it are two paths, chosen here and nowhere else:

- the **fast path**, a response of the gateway's own transport
  (:class:`~gateway.upstream.transport.UpstreamTransport`) with an identity
  body: ``read`` *is* the exchange's own ``read`` (the bytes that arrived since
  the last call, straight from the socket's read callback; no frame in between
  per token), ``abort`` the exchange's;
- the **fallback**, any other response (``httpx2``'s default transport, chosen
  under a proxy or by ``upstream_transport = "httpx2"``, or a compressed body):
  read through ``aiter_bytes()`` with the library's errors translated, aborted
  by shutting down the socket of httpcore's network stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import httpx2

from gateway.upstream.connection import shutdown_now
from gateway.upstream.errors import LIBRARY_ERRORS, ReadError, TransportError, as_transport_error
from gateway.upstream.transport import exchange_of

_IDENTITY = frozenset({"", "identity"})
# HTTP/2 multiplexes other requests on the same socket: those must not be cut off.
_DEDICATED = frozenset({"HTTP/1.1", "HTTP/1.0"})


class UpstreamStream:
    """One streamed upstream response: status and headers, then its body piece by piece.

    ``read`` is an attribute (the fast path's bound method itself), so the
    per-token call costs what the exchange's own read costs.
    """

    __slots__ = ("_abort", "_response", "headers", "read", "status")

    read: Callable[[], Awaitable[bytes]]

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers
        exchange = exchange_of(response)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if exchange is not None and encoding in _IDENTITY:
            self.read = exchange.read
            self._abort = exchange.abort
        else:
            self.read = _LibraryBody(response.aiter_bytes()).read
            self._abort = SocketAborter(response).abort

    def abort(self) -> None:
        """Cut the connection off now (the upstream sees it close this turn); never raises.

        Idempotent, and a no-op once closed: the connection may serve another
        request by then. Reads after it fail; :meth:`aclose` must still follow.
        """
        self._abort()

    async def aclose(self) -> None:
        """Release the response (its connection goes back to the pool only when complete)."""
        await self._response.aclose()

    async def read_all(self, limit: int = 1 << 20) -> bytes:
        """The rest of the body, up to ``limit`` bytes (an error body, say)."""
        pieces: list[bytes] = []
        size = 0
        while size < limit:
            piece = await self.read()
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
        return b"".join(pieces)[:limit]

    async def drain(self) -> None:
        """Read the body to its end, so that its connection can go back to the pool.

        For after the last event that matters: a failure here is swallowed (the
        answer is complete; a late hiccup only costs the pooled connection).
        """
        try:
            while await self.read():
                pass
        except TransportError:
            pass


async def open_stream(client: httpx2.AsyncClient, request: httpx2.Request) -> UpstreamStream:
    """Send ``request`` and return its stream once the response head is in.

    Raises :class:`TransportError` when the connection fails (whichever transport).
    """
    try:
        response = await client.send(request, stream=True)
    except LIBRARY_ERRORS as exc:
        raise _translated(exc) from None
    return UpstreamStream(response)


def adopt(response: httpx2.Response) -> UpstreamStream:
    """The stream of a response an SDK opened with ``stream=True`` (its head is in)."""
    return UpstreamStream(response)


def _translated(exc: BaseException) -> TransportError:
    return as_transport_error(exc) or ReadError(str(exc) or type(exc).__name__)


class _LibraryBody:
    """The fallback's ``read``: ``aiter_bytes()`` (which decodes), one error family."""

    __slots__ = ("_iterator",)

    def __init__(self, iterator: AsyncIterator[bytes]) -> None:
        self._iterator = iterator

    async def read(self) -> bytes:
        try:
            async for chunk in self._iterator:
                if chunk:
                    return chunk
        except LIBRARY_ERRORS as exc:
            raise _translated(exc) from None
        return b""


class _StreamedResponse(Protocol):
    """What ``httpx.Response`` and ``httpx2.Response`` both offer."""

    @property
    def extensions(self) -> Any: ...

    @property
    def http_version(self) -> str: ...

    @property
    def is_closed(self) -> bool: ...


class SocketAborter:
    """``abort()`` for a response of httpcore (``httpx``, or ``httpx2``'s default transport).

    httpcore's network stream exposes the socket as ``get_extra_info("socket")``:
    under asyncio a ``TransportSocket``, under uvloop a ``PseudoSocket`` whose
    ``shutdown`` is refused, which :func:`shutdown_now` handles. Made when the
    response opens; the socket is looked up then, once.
    """

    __slots__ = ("_response", "_socket")

    def __init__(self, response: _StreamedResponse) -> None:
        self._response = response
        self._socket = _socket_of(response)

    def abort(self) -> None:
        """Shut the connection down now; idempotent, never raises."""
        sock, self._socket = self._socket, None
        # Once closed, the connection may be back in the pool serving another
        # request (or its descriptor reused): it is no longer ours to cut.
        if sock is None or self._response.is_closed:
            return
        shutdown_now(sock)


def _socket_of(response: _StreamedResponse) -> Any:
    try:
        if response.http_version not in _DEDICATED:
            return None
        stream = response.extensions.get("network_stream")
        return None if stream is None else stream.get_extra_info("socket")
    except Exception:
        return None  # an unusual transport: fall back to the orderly close alone
