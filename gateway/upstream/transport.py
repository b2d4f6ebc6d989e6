"""The pool as an ``httpx2`` transport, so that the official SDKs send through it.

The SDKs keep doing everything they do (auth, base URL, headers, status-error
mapping, timeouts per request) and hand the finished ``httpx2.Request`` to
:class:`UpstreamTransport`, which replaces httpcore2's pool, h11 and the anyio
stream underneath: the part that costs most per streamed chunk. A response it
returns carries its :class:`~gateway.upstream.exchange.Exchange` in
``response.extensions``, which is how :mod:`gateway.upstream.stream` (and
nothing outside this package) finds it for the fast path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2

from gateway.upstream import errors
from gateway.upstream.connection import Origin
from gateway.upstream.exchange import Exchange
from gateway.upstream.pool import ConnectionPool, PoolLimits, TransportTimeouts

EXCHANGE_EXTENSION = "gateway.exchange"

_DEFAULT_PORTS = {"http": 80, "https": 443}

_HTTPX2_ERRORS: dict[type[errors.TransportError], type[httpx2.TransportError]] = {
    errors.ConnectError: httpx2.ConnectError,
    errors.ConnectTimeout: httpx2.ConnectTimeout,
    errors.PoolTimeout: httpx2.PoolTimeout,
    errors.WriteError: httpx2.WriteError,
    errors.WriteTimeout: httpx2.WriteTimeout,
    errors.ReadError: httpx2.ReadError,
    errors.ReadTimeout: httpx2.ReadTimeout,
    errors.ProtocolError: httpx2.RemoteProtocolError,
}


class UpstreamTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over :class:`ConnectionPool`; ``http`` and ``https`` URLs, no proxies."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None, limits: PoolLimits | None = None
    ) -> None:
        self.pool = ConnectionPool(ssl_context=ssl_context, limits=limits)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        origin = Origin(scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        body = await request.aread()
        # The client (an SDK) just spent a few hundred microseconds building this
        # request in one go; let other connections' pending I/O run before the next
        # stretch (head, connection, write), so a request start does not delay the
        # tokens of running streams by its whole cost. Bench (bench/README.md
        # optimisation log, c=100): task steps over 0.5 ms in 8 s, WebSocket 270 -> 84.
        await asyncio.sleep(0)
        with _mapped(request):
            head = _request_head(request.method, url.raw_path, request.headers.raw, len(body))
            exchange = await self.pool.request(
                origin,
                head,
                body,
                _timeouts(request.extensions.get("timeout")),
                head_only=request.method == "HEAD",
                server_hostname=request.extensions.get("sni_hostname"),
            )
        return httpx2.Response(
            exchange.status,
            headers=exchange.headers,
            stream=_ResponseStream(exchange, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": exchange.reason,
                EXCHANGE_EXTENSION: exchange,
            },
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


def exchange_of(response: httpx2.Response) -> Exchange | None:
    """The exchange behind a response this transport returned, else ``None``."""
    exchange = response.extensions.get(EXCHANGE_EXTENSION)
    return exchange if isinstance(exchange, Exchange) else None


def as_httpx2_error(exc: errors.TransportError, request: httpx2.Request) -> httpx2.TransportError:
    return _HTTPX2_ERRORS[type(exc)](str(exc), request=request)


class _ResponseStream(httpx2.AsyncByteStream):
    def __init__(self, exchange: Exchange, request: httpx2.Request) -> None:
        self._exchange = exchange
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._exchange.read
        while True:
            with _mapped(self._request):
                chunk = await read()
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        self._exchange.close()


@contextlib.contextmanager
def _mapped(request: httpx2.Request) -> Iterator[None]:
    try:
        yield
    except errors.TransportError as exc:
        raise as_httpx2_error(exc, request) from exc


def _timeouts(given: Any) -> TransportTimeouts:
    if not isinstance(given, dict):
        return TransportTimeouts()
    return TransportTimeouts(
        connect=given.get("connect"),
        read=given.get("read"),
        write=given.get("write"),
        pool=given.get("pool"),
    )


def _request_head(
    method: str, target: bytes, headers: list[tuple[bytes, bytes]], body_length: int
) -> bytes:
    """Request line and headers. A streamed body was read whole, so it gets a length."""
    parts = [method.encode("ascii"), b" ", target or b"/", b" HTTP/1.1\r\n"]
    framed = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            continue
        if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
            # Header injection: a value from configuration must not smuggle in a request.
            raise errors.ProtocolError("a request header contains a line break")
        framed = framed or lowered == b"content-length"
        parts += (name, b": ", value, b"\r\n")
    if not framed and (body_length or method not in ("GET", "HEAD", "DELETE", "OPTIONS")):
        parts += (b"content-length: ", str(body_length).encode(), b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
