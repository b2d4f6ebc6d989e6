"""The gateway's upstream seam: one stream interface over its own HTTP/1.1 transport.

Streaming relays spend most of their time reading the upstream, so this is the
one piece of plumbing the gateway owns rather than borrows: an asyncio protocol
per connection feeding httptools, a keep-alive pool, and an ``httpx2`` transport
(:class:`UpstreamTransport`) so the official SDKs send through it unchanged.
Adapters see only:

- :func:`async_client` -- the ``httpx2.AsyncClient`` they send through (on the
  own transport, or on ``httpx2``'s default one where that cannot go);
- :class:`UpstreamStream` -- one streamed response: ``read`` / ``abort`` /
  ``aclose``, from :func:`open_stream` or, for a response an SDK opened,
  :func:`adopt`; :class:`LineDecoder` splits its pieces into lines;
- :mod:`gateway.upstream.errors` -- the one failure family
  (:class:`TransportError`), whichever transport failed.

Nothing here imports a provider.

Bench (bench/README.md, "Own transport or the library's"): 42,342 instructions per
relayed token against 121,870 over ``httpx2``'s default transport (65 % fewer); with
the lean WebSocket writer, gateway CPU per paced token at c=100 ~220 -> ~138 µs
(WebSocket; optimisation log).
"""

from gateway.upstream import errors
from gateway.upstream.client import async_client
from gateway.upstream.errors import TransportError, as_transport_error
from gateway.upstream.lines import LineDecoder
from gateway.upstream.pool import ConnectionPool, PoolLimits, TransportTimeouts
from gateway.upstream.stream import UpstreamStream, adopt, open_stream
from gateway.upstream.transport import UpstreamTransport

__all__ = [
    "ConnectionPool",
    "LineDecoder",
    "PoolLimits",
    "TransportError",
    "TransportTimeouts",
    "UpstreamStream",
    "UpstreamTransport",
    "adopt",
    "as_transport_error",
    "async_client",
    "errors",
    "open_stream",
]
