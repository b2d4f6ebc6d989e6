"""Cutting a streamed HTTP/1.1 response's connection off synchronously (``abort()``).

Closing a response the orderly way is async and takes several event-loop turns;
cutting the connection off makes the upstream stop generating (and billing) in
the same turn that handled the Stop. The orderly close still runs afterwards and
releases the response; an aborted connection is never reused.

A response from the gateway's own transport (:mod:`gateway.upstream`, the usual
case) is aborted through its exchange, which aborts the asyncio transport. A
response from httpcore (``httpx``, or ``httpx2`` left on its default transport
because a proxy is configured) is aborted by :class:`SocketAborter`: httpcore's
network stream exposes the socket as ``get_extra_info("socket")``, under asyncio a
``TransportSocket``, under uvloop a ``PseudoSocket`` whose ``shutdown`` is
refused, so the shutdown goes through a ``dup`` of the descriptor (shutting down
a duplicate shuts down the shared connection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import httpx2

from gateway.upstream import exchange_of
from gateway.upstream.connection import shutdown_now

# HTTP/2 multiplexes other requests on the same socket: those must not be cut off.
_DEDICATED = frozenset({"HTTP/1.1", "HTTP/1.0"})


class _StreamedResponse(Protocol):
    """What ``httpx.Response`` and ``httpx2.Response`` both offer."""

    @property
    def extensions(self) -> Any: ...

    @property
    def http_version(self) -> str: ...

    @property
    def is_closed(self) -> bool: ...


def aborter_for(response: httpx2.Response) -> Callable[[], None]:
    """The synchronous, idempotent ``abort`` for one open streamed response."""
    exchange = exchange_of(response)
    if exchange is not None:
        return exchange.abort
    return SocketAborter(response).abort


class SocketAborter:
    """``abort()`` for one open streamed response (see the module docstring).

    Made when the response opens; the socket is looked up then, once.
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
