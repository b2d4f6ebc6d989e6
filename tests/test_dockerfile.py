"""The Dockerfile, checked without a Docker engine: what it installs, and its
HEALTHCHECK command run for real against a server started with ``serve --port``."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.gateway.test_cli import clean_env, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instruction(name: str) -> list[str]:
    """Every ``NAME ...`` instruction's arguments, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1) for m in re.finditer(rf"^{name}\s+(.*)$", joined, re.M)]


def _runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _instruction("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def _healthcheck_command() -> list[str]:
    (args,) = _instruction("HEALTHCHECK")
    command: list[str] = json.loads(args.split(" CMD ", 1)[1])
    return command


def test_no_syntax_directive_so_an_offline_build_needs_no_parser_image() -> None:
    assert "# syntax" not in DOCKERFILE


def test_the_image_installs_the_hash_pinned_lock_and_nothing_unpinned() -> None:
    runs = _instruction("RUN")
    assert any("--require-hashes -r requirements.lock" in run for run in runs)
    installs = [run for run in runs if "pip install" in run]
    assert all("--require-hashes" in run or "--no-deps" in run for run in installs), installs


@pytest.mark.anyio
async def test_the_health_check_follows_the_port_actually_served(tmp_path: Path) -> None:
    command = _healthcheck_command()
    assert command[0] == "chat-gateway"
    # The installed console script, as in the image.
    command[0] = str(Path(sys.executable).with_name("chat-gateway"))
    env = {k: v for k, v in _runtime_env().items() if k.startswith("GATEWAY_")}
    assert env["GATEWAY_PORT"] == "8000"  # the image's default, which --port overrides
    env["GATEWAY_ADDRESS_FILE"] = str(tmp_path / "address")
    env["GATEWAY_HOST"] = "127.0.0.1"  # tests listen on loopback only
    port = free_port()
    assert port != 8000

    async def check() -> subprocess.CompletedProcess[str]:
        return await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                command, env=clean_env(**env), capture_output=True, text=True, timeout=30
            )
        )

    before = await check()
    assert before.returncode == 1  # nothing listening yet
    assert "not listening" in before.stderr
    async with serving(port, **env) as (process, _):
        healthy = await check()
        assert healthy.returncode == 0, healthy.stderr
        assert (tmp_path / "address").read_text().strip() == f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            assert await process.wait() == 0
    after = await check()
    assert after.returncode == 1
    assert not (tmp_path / "address").exists()
