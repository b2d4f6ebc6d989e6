"""The README's WebSocket and tool-call examples, run as written (only the URL and model
swapped in), so that neither can go stale."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app as openai_fake_app
from tests.gateway.http._support import gateway as http_gateway
from tests.gateway.ws._support import gateway

pytestmark = pytest.mark.anyio

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _example(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    (example,) = [b for b in blocks if marker in b]
    return example


def _websocket_example() -> str:
    return _example("websockets.asyncio.client")


def _run(source: str, scope: dict[str, object] | None = None) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(
            compile(source, "README.md", "exec"),
            {"__name__": "__main__"} if scope is None else scope,
        )
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


async def test_the_tool_call_example_calls_the_tool_then_answers_from_its_result() -> None:
    """The README's ``demo/tools`` example, through the sync ``openai`` SDK it shows."""
    scope: dict[str, object] = {"__name__": "__main__"}
    async with http_gateway() as gw:
        source = _example("tool_calls[0]")
        assert "http://127.0.0.1:8000/api/v1" in source
        source = source.replace("http://127.0.0.1:8000/api/v1", f"{gw.base}/api/v1")
        printed = await anyio.to_thread.run_sync(_run, source, scope)
    call: Any = scope["call"]
    # What its comments say: get_weather({"city": "Paris"}), then the answer from the result.
    assert (call.function.name, orjson.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    # (The server's own log lines go to the same stdout.)
    assert "get_weather returned: 21 C, sunny" in printed.splitlines()
