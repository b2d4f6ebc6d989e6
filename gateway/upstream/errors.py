"""How an upstream HTTP exchange can fail, independent of ``httpx`` and ``httpx2``.

The transports map each class to the same-named exception of the library they
serve (see :mod:`gateway.upstream.transports`); code that reads a body through
:func:`gateway.upstream.body_reader` sees these directly. Messages name the
origin (``host:port``) at most: never a path, a query or credentials.
"""

from __future__ import annotations


class TransportError(Exception):
    """The connection failed; nothing about the request itself was wrong."""

    timed_out = False


class ConnectError(TransportError):
    pass


class ConnectTimeout(TransportError):
    timed_out = True


class PoolTimeout(TransportError):
    """No connection became free in time (``max_connections`` reached)."""

    timed_out = True


class WriteError(TransportError):
    pass


class WriteTimeout(TransportError):
    timed_out = True


class ReadError(TransportError):
    pass


class ReadTimeout(TransportError):
    """Nothing arrived for the read timeout: a silent upstream."""

    timed_out = True


class ProtocolError(TransportError):
    """The peer broke HTTP/1.1: a malformed response, or a close mid-message."""
