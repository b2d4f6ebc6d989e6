"""configure_logging: one stream for structlog and uvicorn, JSON or console, re-callable."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from gateway.logging import configure_logging
from gateway.providers.base import Usage
from gateway.settings import load_settings
from gateway.telemetry import ChatSummary


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_from_structlog_and_uvicorn_and_no_duplicates() -> None:
    settings = load_settings(log_format="json", log_level="info")
    configure_logging(settings, io.StringIO())
    stream = io.StringIO()
    configure_logging(settings, stream)  # again: replaces, does not add
    structlog.get_logger("gateway.test").info("hello", answer=42)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    logging.getLogger("uvicorn.access").debug("filtered by level")
    out = records(stream)
    assert [r["event"] for r in out] == ["hello", "Started server process [7]"]
    assert out[0]["answer"] == 42
    assert out[0]["level"] == "info"
    assert out[0]["logger"] == "gateway.test"
    assert "timestamp" in out[0]
    assert out[1]["logger"] == "uvicorn.error"


def test_level_and_console_format() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="console", log_level="warning"), stream)
    structlog.get_logger("gateway.test").info("quiet")
    structlog.get_logger("gateway.test").warning("loud", port=1)
    text = stream.getvalue()
    assert "quiet" not in text
    assert "loud" in text and "port=1" in text
    assert not text.lstrip().startswith("{")


def test_chat_summary_shape_without_content() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream)
    summary = ChatSummary("req_1", "http", "key-abc", "demo/echo", stream=True)
    summary.routed("demo", "echo")
    summary.mark_first_token()
    summary.usage(Usage(3, 5))
    summary.emit()
    (line,) = records(stream)
    assert line["event"] == "chat.request"
    for key in ("request_id", "model", "provider", "target_model", "status", "stream"):
        assert key in line
    assert (line["input_tokens"], line["output_tokens"]) == (3, 5)
    assert isinstance(line["ttft_ms"], float) and isinstance(line["duration_ms"], float)
    assert line["principal"] == "key-abc"
    assert "prompt" not in line and "completion" not in line


@pytest.mark.parametrize("level", ["info", "debug"])
def test_health_probes_are_access_logged_at_debug(level: str) -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json", log_level=level), stream)
    access = logging.getLogger("uvicorn.access")
    line = '%s - "%s %s HTTP/%s" %d'
    for path in ("/health/live", "/health", "/health/ready", "/api/v1/models"):
        access.info(line, "127.0.0.1:5000", "GET", path, "1.1", 200)
    logged = [(r["level"], str(r["event"]).split()[3]) for r in records(stream)]
    probes = [("debug", p) for p in ("/health/live", "/health", "/health/ready")]
    expected = [*(probes if level == "debug" else []), ("info", "/api/v1/models")]
    assert logged == expected


@pytest.mark.anyio
async def test_debug_logging_carries_no_message_content_from_the_sdks() -> None:
    # The SDKs log each request's options (the whole body) at debug.
    from tests.gateway.providers.test_anthropic import anthropic_fake
    from tests.gateway.providers.test_anthropic import collect as collect_anthropic
    from tests.gateway.providers.test_openai import REQUEST, collect, openai_fake

    stream = io.StringIO()
    configure_logging(load_settings(log_format="json", log_level="debug"), stream)
    structlog.get_logger("gateway.test").debug("debug is on")
    async with openai_fake() as (_, provider):
        await collect(provider)
    async with anthropic_fake() as (_, anthropic_provider):
        await collect_anthropic(anthropic_provider)
    text = stream.getvalue()
    assert "debug is on" in text
    prompts = [m.text for m in REQUEST.messages]
    assert prompts and not [p for p in prompts if p in text]
    assert "Be brief." not in text  # the Anthropic request's system prompt
