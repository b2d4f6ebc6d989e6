"""Capture the server's log as the production setup writes it (configure_logging, JSON)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import structlog

from gateway.logging import configure_logging
from gateway.settings import load_settings

_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# With this, uvicorn adds no logging config of its own: configure_logging owns it.
PRODUCTION_LOGGING = {"log_config": None, "log_level": "info", "access_log": True}


@dataclass
class Logs:
    stream: io.StringIO = field(default_factory=io.StringIO)

    def records(self) -> list[dict[str, object]]:
        """The server's records (a test's own httpx client logs the URLs it requested)."""
        records = [orjson.loads(line) for line in self.stream.getvalue().splitlines()]
        return [r for r in records if r["logger"] != "httpx"]

    def text(self) -> str:
        return "\n".join(map(str, self.records()))

    def at_least(self, level: str) -> list[dict[str, object]]:
        order = ["debug", "info", "warning", "error", "critical"]
        return [r for r in self.records() if order.index(str(r["level"])) >= order.index(level)]


@contextlib.contextmanager
def captured_logs() -> Iterator[Logs]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs = Logs()
    configure_logging(load_settings(log_format="json", log_level="info"), logs.stream)
    try:
        yield logs
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in _UVICORN:
            logging.getLogger(name).filters.clear()
        structlog.reset_defaults()
