"""The ``chat-gateway`` command, run as a real subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import orjson
import pytest
from anyio.abc import Process

from gateway import __version__
from gateway.cli import main

_SCRIPT = Path(sys.executable).with_name("chat-gateway")
# The installed console script when there is one (what users run), else the module.
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gateway.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(extra)
    return env


@asynccontextmanager
async def serving(port: int, **env: str) -> AsyncIterator[tuple[Process, list[str]]]:
    """Start ``chat-gateway serve``; ready once it logs that it listens."""
    process = await anyio.open_process(
        [*COMMAND, "serve", "--port", str(port)],
        env=clean_env(**{"GATEWAY_DEMO_TOKEN_DELAY_MS": "0", "GATEWAY_LOG_FORMAT": "json", **env}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    assert process.stderr is not None
    stderr = process.stderr
    try:
        buffer = b""
        with anyio.fail_after(15):
            while b"gateway.listening" not in buffer:
                buffer += await stderr.receive()
        lines.extend(buffer.decode().splitlines())
        yield process, lines
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.aclose()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_invalid_config_exits_2_with_a_message_and_no_traceback() -> None:
    result = subprocess.run(
        [*COMMAND, "serve"],
        env=clean_env(GATEWAY_PORT="abc"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "port" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2() -> None:
    result = subprocess.run(
        [*COMMAND, "serve", "--config", "/nonexistent/gateway.toml"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "/nonexistent/gateway.toml" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.anyio
async def test_serve_answers_then_drains_and_exits_0_on_sigterm() -> None:
    port = free_port()
    async with serving(port) as (process, lines):
        assert any("auth disabled" in line for line in lines)  # the loud warning
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/health")
            chat = await client.post(
                "/api/v1/chat/completions",
                json={"model": "demo/echo", "messages": [{"role": "user", "content": "hi you"}]},
            )
        assert health.json()["service"] == "chat-gateway"
        assert chat.json()["choices"][0]["message"]["content"] == "hi you"
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            code = await process.wait()
        assert code == 0
        assert process.stderr is not None
        rest = b""
        async for chunk in process.stderr:
            rest += chunk
        log = rest.decode()
        records = [orjson.loads(line) for line in [*lines, *log.splitlines()] if line]
        events = [r["event"] for r in records]  # every line is JSON, uvicorn's included
        assert "drain.finished" in events
        summary = next(r for r in records if r["event"] == "chat.request")
        assert (summary["model"], summary["status"], summary["provider"]) == (
            "demo/echo",
            "ok",
            "demo",
        )
        assert "hi you" not in log  # message content is not logged by default
