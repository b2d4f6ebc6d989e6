"""The README's WebSocket example, run as written (only its URL and model swapped in)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import anyio
import pytest

from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app as openai_fake_app
from tests.gateway.ws._support import gateway

pytestmark = pytest.mark.anyio

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _websocket_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    (example,) = [b for b in blocks if "websockets.asyncio.client" in b]
    return example


def _run(source: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "README.md", "exec"), {"__name__": "__main__"})
    return out.getvalue()


async def test_the_websocket_example_prints_why_an_answer_failed() -> None:
    upstream = FakeUpstream(api_key="sk-fake")
    upstream.queue(Scenario(tokens=["a", "b", "c"], error_after=1))
    async with (
        serve(openai_fake_app(upstream)) as fake,
        gateway(
            openai_base_url=f"{fake}/v1", openai_api_key="sk-fake", retry={"max_attempts": 1}
        ) as gw,
    ):
        source = _websocket_example()
        source = source.replace("ws://127.0.0.1:8000/api/v1/ws", gw.url)
        source = source.replace('"demo/echo"', '"openai/gpt-4o-mini"')
        printed = await anyio.to_thread.run_sync(_run, source)
    done = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(done) == 1 and done[0].startswith("[failed] upstream"), printed
    assert ": " in done[0].removeprefix("[failed] ")  # code: message


async def test_the_websocket_example_prints_usage_when_completed() -> None:
    async with gateway() as gw:
        source = _websocket_example().replace("ws://127.0.0.1:8000/api/v1/ws", gw.url)
        printed = await anyio.to_thread.run_sync(_run, source)
    assert "Hello there, gateway!\n[completed] {" in printed
