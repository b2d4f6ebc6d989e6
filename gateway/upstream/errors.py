"""How an upstream HTTP exchange can fail: the one error family providers see.

The gateway's own transport raises these; whatever ``httpx2`` (its default
transport, under a proxy) or an SDK raises instead is turned into one of them by
:func:`as_transport_error`, so a provider maps exactly one family to
:class:`gateway.errors.UpstreamError`. (The own transport also hands the SDKs
``httpx2``'s same-named exceptions, because the SDKs catch only those; each one
wraps the original as its ``__cause__``, which is what comes back out here.)

A message may name the origin (``host:port``), never a path, a query or
credentials; even so it is detail for the log, not for clients: :attr:`kind`
says what failed without saying where.
"""

from __future__ import annotations

import ssl

import anyio
import httpx2


class TransportError(Exception):
    """The connection failed; nothing about the request itself was wrong."""

    timed_out = False
    kind = "connection failed"


class ConnectError(TransportError):
    kind = "connection refused or unreachable"


class ConnectTimeout(TransportError):
    timed_out = True
    kind = "connecting timed out"


class PoolTimeout(TransportError):
    """No connection became free in time (``max_connections`` reached)."""

    timed_out = True
    kind = "no connection free in time"


class WriteError(TransportError):
    kind = "sending the request failed"


class WriteTimeout(TransportError):
    timed_out = True
    kind = "sending the request timed out"


class ReadError(TransportError):
    kind = "connection lost"


class ReadTimeout(TransportError):
    """Nothing arrived for the read timeout: a silent upstream."""

    timed_out = True
    kind = "no data within the read timeout"


class ProtocolError(TransportError):
    """The peer broke HTTP/1.1: a malformed response, or a close mid-message."""

    kind = "malformed response"


# Most specific first: ``isinstance`` decides, and httpx2's timeouts share a base.
_LIBRARY: tuple[tuple[type[BaseException], type[TransportError]], ...] = (
    (httpx2.ConnectTimeout, ConnectTimeout),
    (httpx2.PoolTimeout, PoolTimeout),
    (httpx2.WriteTimeout, WriteTimeout),
    (httpx2.ReadTimeout, ReadTimeout),
    (httpx2.ConnectError, ConnectError),
    (httpx2.ProxyError, ConnectError),
    (httpx2.UnsupportedProtocol, ConnectError),
    (httpx2.WriteError, WriteError),
    (httpx2.ProtocolError, ProtocolError),
    (httpx2.DecodingError, ProtocolError),
    (httpx2.TimeoutException, ReadTimeout),
    (httpx2.RequestError, ReadError),
    (anyio.EndOfStream, ReadError),
    (anyio.BrokenResourceError, ReadError),
    (ssl.SSLError, ReadError),
)

# What the library's stream reading can raise for a failed connection.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = tuple(kind for kind, _ in _LIBRARY)


# An SDK error wraps httpx2's, which wraps ours: a few links at most.
_MAX_CAUSES = 8


def as_transport_error(exc: BaseException) -> TransportError | None:
    """The transport failure ``exc`` stands for, or ``None`` if it is none.

    The first of ours along the ``__cause__`` chain wins (the own transport's
    original behind ``httpx2``'s copy, behind an SDK's connection error);
    otherwise the first library error found is translated, keeping its text.
    """
    seen: BaseException | None = exc
    library: tuple[BaseException, type[TransportError]] | None = None
    for _ in range(_MAX_CAUSES):
        if seen is None:
            break
        if isinstance(seen, TransportError):
            return seen
        if library is None:
            for kind, ours in _LIBRARY:
                if isinstance(seen, kind):
                    library = (seen, ours)
                    break
        seen = seen.__cause__
    if library is None:
        return None
    original, ours = library
    text = str(original) or type(original).__name__
    origin = origin_of(original)
    if origin is not None and origin not in text:
        text = f"{text} ({origin})"  # the library's message often says not where
    translated = ours(text)
    translated.__cause__ = original
    return translated


def origin_of(exc: BaseException) -> str | None:
    """``scheme://host:port`` of the request a library error along ``exc``'s causes was
    for (the library's own message often names none); for the log, never for clients."""
    seen: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if seen is None:
            return None
        if isinstance(seen, httpx2.RequestError):
            try:
                url = seen.request.url
            except RuntimeError:  # raised without its request
                return None
            return f"{url.scheme}://{url.host}:{url.port or ''}"
        seen = seen.__cause__
    return None
