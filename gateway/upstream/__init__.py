"""The gateway's HTTP/1.1 client for upstream providers.

Streaming relays spend most of their time reading the upstream, so this is the
one piece of plumbing the gateway owns rather than borrows: an asyncio protocol
per connection feeding httptools, a keep-alive pool, and an ``httpx2`` transport
(:class:`UpstreamTransport`) so the official SDKs send through it unchanged.

- :func:`async_client` -- the ``httpx2.AsyncClient`` the adapters use;
- :func:`body_reader` -- the next piece of a streamed body, without the layers of
  ``aiter_lines()``; :class:`LineDecoder` splits those pieces into lines;
- :class:`~gateway.upstream.exchange.Exchange` -- one response as it arrives,
  with a synchronous ``abort()`` that cuts the connection off at once;
- :mod:`gateway.upstream.errors` -- the failures, mapped to ``httpx2``'s own by
  the transport.
"""

from gateway.upstream import errors
from gateway.upstream.client import async_client
from gateway.upstream.connection import Origin
from gateway.upstream.errors import TransportError
from gateway.upstream.exchange import Exchange
from gateway.upstream.lines import LineDecoder
from gateway.upstream.pool import ConnectionPool, PoolLimits, TransportTimeouts
from gateway.upstream.reading import body_reader, drain
from gateway.upstream.transport import UpstreamTransport, exchange_of

__all__ = [
    "ConnectionPool",
    "Exchange",
    "LineDecoder",
    "Origin",
    "PoolLimits",
    "TransportError",
    "TransportTimeouts",
    "UpstreamTransport",
    "async_client",
    "body_reader",
    "drain",
    "errors",
    "exchange_of",
]
