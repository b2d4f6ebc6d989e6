"""Structured logging: structlog in front, the stdlib ``logging`` machinery behind.

Everything -- the gateway's own structlog loggers and uvicorn's stdlib loggers --
ends in one root handler whose formatter renders JSON (orjson) or console lines,
so a deployment gets one consistent stream. :func:`configure_logging` replaces its
own handler on each call, so calling it again (tests do) never duplicates output.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import Processor

from gateway.log_redaction import UvicornRedaction
from gateway.settings import Settings

_HANDLER_NAME = "chat-gateway"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# The SDKs and their HTTP client log whole request bodies (the messages) at debug:
# never below info, so that debug logging still carries no message content.
_CONTENT_AT_DEBUG = ("openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2")


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route all logging through structlog with the format and level of ``settings``."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        shared.append(structlog.processors.dict_tracebacks)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # No caching: a cached logger would keep the processors of the first
        # configuration; logging here is per request, never per token.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    for name in _CONTENT_AT_DEBUG:
        logging.getLogger(name).setLevel(max(level, logging.INFO))

    # uvicorn's loggers propagate to the root handler instead of printing on their own.
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(level)
        # No query strings (client keys) and no client-caused tracebacks: see log_redaction.
        for old_filter in [f for f in logger.filters if isinstance(f, UvicornRedaction)]:
            logger.removeFilter(old_filter)
        logger.addFilter(UvicornRedaction())
    access = logging.getLogger("uvicorn.access")
    for probes in [f for f in access.filters if isinstance(f, _ProbesAtDebug)]:
        access.removeFilter(probes)
    access.addFilter(_ProbesAtDebug(level))


class _ProbesAtDebug(logging.Filter):
    """Health probes (a load balancer's every few seconds) are access-logged at debug.

    uvicorn logs every request at info; a probe line every 10 s per probe drowns the
    lines that matter. The record passes the logger's level check before filters
    run, so this both lowers its level and drops it when debug is not wanted.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path, http version, status)
        if not (isinstance(args, tuple) and len(args) == 5 and _is_probe(args[2])):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._level <= logging.DEBUG


def _is_probe(path: object) -> bool:
    return isinstance(path, str) and (path == "/health" or path.startswith("/health/"))


def _orjson_dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode("utf-8")
