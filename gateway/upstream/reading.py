"""Reading a streamed response body with as little in between as possible.

:func:`body_reader` returns a function that gives the next piece of the body
(``b""`` at the end). For a response from :class:`~gateway.upstream.transport.
UpstreamTransport` that is the exchange's own ``read``: the bytes that arrived
since the last call, straight from the socket's read callback. Any other
response -- a compressed body, or one sent through a proxy by httpcore2 -- is
read through ``aiter_bytes()``, which decodes it. Failures surface as
:class:`gateway.upstream.errors.TransportError` on the first path and as
``httpx2.TransportError`` on the other; callers catch both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2

from gateway.upstream.errors import TransportError
from gateway.upstream.transport import exchange_of

_IDENTITY = frozenset({"", "identity"})


def body_reader(response: httpx2.Response) -> Callable[[], Awaitable[bytes]]:
    exchange = exchange_of(response)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if exchange is not None and encoding in _IDENTITY:
        return exchange.read
    return _IteratedBody(response.aiter_bytes()).read


class _IteratedBody:
    __slots__ = ("_iterator",)

    def __init__(self, iterator: AsyncIterator[bytes]) -> None:
        self._iterator = iterator

    async def read(self) -> bytes:
        async for chunk in self._iterator:
            if chunk:
                return chunk
        return b""


async def drain(read: Callable[[], Awaitable[bytes]]) -> None:
    """Read a body to its end, so that its connection can go back to the pool.

    For after the last event that matters: a failure here is swallowed (the
    answer is complete; a late hiccup only costs the pooled connection).
    """
    try:
        while await read():
            pass
    except (TransportError, httpx2.TransportError):
        pass
