"""What uvicorn's own log records may not say: query strings, and tracebacks a client causes.

uvicorn writes the request target into its access lines (``uvicorn.access``) and
into its WebSocket handshake lines (``uvicorn.error``: ``"WebSocket /path?query"
[accepted]`` / ``403``), query string included, and a client's key in a URL
(``?api_key=ck-...``) would land in the log. The gateway never reads keys from a
query string, so nothing is lost by logging only the path: the query is replaced
by ``?[redacted]``, which still says one was there.

uvicorn also logs a full traceback, at error level, for every text frame that is
not valid UTF-8 (``logger.exception`` in its WebSocket protocol) before it closes
the socket with 1007. That is the client's fault, not the server's: a flood of
such frames would flood the log. The record becomes one warning line, no traceback.

Installed on uvicorn's loggers by :func:`gateway.logging.configure_logging`.
"""

from __future__ import annotations

import logging
from typing import Final

REDACTED_QUERY: Final = "?[redacted]"
_INVALID_UTF8: Final = "Invalid UTF-8 sequence received from client."
_INVALID_UTF8_LINE: Final = "ws.invalid_utf8: text frame is not UTF-8, closed 1007"


def redact_target(target: str) -> str:
    """``/path?query`` -> ``/path?[redacted]``; anything else unchanged."""
    path, sep, _ = target.partition("?")
    return path + REDACTED_QUERY if sep else target


class UvicornRedaction(logging.Filter):
    """A filter for ``uvicorn.access`` and ``uvicorn.error``: rewrites, never drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _INVALID_UTF8:
            record.msg = _INVALID_UTF8_LINE
            record.args = None
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
            record.exc_info = None
            record.exc_text = None
            return True
        args = record.args
        if isinstance(args, tuple) and any(_is_target(a) for a in args):
            record.args = tuple(_redacted(a) for a in args)
        return True


def _is_target(value: object) -> bool:
    # uvicorn's request targets start with the path; only those carry a query.
    return isinstance(value, str) and value.startswith("/") and "?" in value


def _redacted(value: object) -> object:
    return redact_target(value) if isinstance(value, str) and _is_target(value) else value
