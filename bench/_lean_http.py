"""The load drivers' lean HTTP client: streamed POSTs over :mod:`gateway.upstream`.

At concurrency 100 over a paced upstream, a bare ``httpx`` client spends a few
hundred microseconds of CPU per streamed chunk on this kind of machine: more
than one core, so the *client* would saturate and its own queueing would be
reported as latency, for the direct baseline and the SSE path alike. Latency
and cancel measurements therefore read HTTP streams with this client (an
asyncio protocol feeding httptools), identically on the direct and the gateway
paths. The relay scenario's CPU baseline stays the bare ``httpx`` reader the
targets name.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.upstream.connection import Origin
from gateway.upstream.exchange import Exchange
from gateway.upstream.pool import ConnectionPool, PoolLimits, TransportTimeouts

_TIMEOUTS = TransportTimeouts(connect=10.0, read=60.0, write=10.0, pool=None)


class LeanClient:
    def __init__(self) -> None:
        limits = PoolLimits(max_connections=None, max_keepalive=None, keepalive_expiry=None)
        self._pool = ConnectionPool(ssl_context=None, limits=limits)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Exchange:
        """Send a POST; the exchange is returned once the response head arrived.

        Read it with ``exchange.read()``; end it with ``exchange.close()`` (or
        ``exchange.abort()`` first, to hang up mid-stream).
        """
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        origin = Origin("http", parts.hostname, parts.port)
        fields = {
            "host": parts.netloc,
            "content-type": "application/json",
            "content-length": str(len(body)),
            **headers,
        }
        head = f"POST {parts.path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in fields.items()
        )
        return await self._pool.request(origin, (head + "\r\n").encode(), body, _TIMEOUTS)

    async def aclose(self) -> None:
        await self._pool.aclose()
