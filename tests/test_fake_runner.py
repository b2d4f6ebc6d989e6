"""``python -m tests.fakes`` runs a fake upstream as its own process (used by the benchmarks)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import httpx
import orjson
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent


async def _base_url(process: Process) -> str:
    assert process.stdout is not None
    seen = ""
    async for text in TextReceiveStream(process.stdout):
        seen += text
        if "\n" in seen:
            break
    line = seen.splitlines()[0]
    assert line.startswith("listening on http://127.0.0.1:")
    return line.removeprefix("listening on ")


async def test_runs_the_ollama_fake_standalone() -> None:
    command = [sys.executable, "-m", "tests.fakes", "--provider", "ollama", "--port", "0"]
    command += ["--tokens", "3", "--delay-ms", "1"]
    process = await anyio.open_process(command, cwd=REPO)
    try:
        with anyio.fail_after(10):
            base = await _base_url(process)
            async with httpx.AsyncClient(base_url=base) as client:
                tags = await client.get("/api/tags")
                chat = await client.post("/api/chat", json={"model": "m", "messages": []})
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    assert tags.status_code == 200
    assert tags.json()["models"][0]["name"] == "llama3.2:latest"
    assert chat.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in chat.text.splitlines()]
    assert [line["message"]["content"] for line in lines] == [" tok0", " tok1", " tok2", ""]
    assert lines[-1]["done"] is True
    assert lines[-1]["eval_count"] == 3


async def test_rejects_unknown_provider() -> None:
    command = [sys.executable, "-m", "tests.fakes", "--provider", "nope", "--port", "0"]
    result = await anyio.run_process(command, cwd=REPO, check=False)
    assert result.returncode == 2
    assert b"invalid choice" in result.stderr


@pytest.mark.parametrize("lean", [False, True], ids=["starlette", "lean"])
async def test_stats_endpoint_reports_how_each_stream_ended(lean: bool) -> None:
    # The benchmarks read cancel latency from these records: they must be right.
    command = [sys.executable, "-m", "tests.fakes", "--provider", "openai", "--port", "0"]
    command += ["--tokens", "500", "--delay-ms", "5", *(["--lean"] if lean else [])]
    process = await anyio.open_process(command, cwd=REPO)
    try:
        with anyio.fail_after(10):
            base = await _base_url(process)
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "m-1"}]}
            async with httpx.AsyncClient(base_url=base) as client:
                async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    seen = 0
                    async for line in response.aiter_lines():
                        seen += line.startswith("data:")
                        if seen == 3:
                            break  # hang up after the role chunk and two tokens
                record: dict[str, object] = {}
                while record.get("outcome") in (None, "pending"):
                    stats = (await client.get("/_fake/requests")).json()["requests"]
                    record = stats[-1] if stats else {}
                    await anyio.sleep(0.01)  # polling another process: no event to await
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    assert record["marker"] == "m-1"
    assert record["outcome"] == "disconnected"
    assert isinstance(record["ended_at"], float)
    assert isinstance(record["started_at"], float)
    assert record["ended_at"] >= record["started_at"]
    assert isinstance(record["chunks_sent"], int)
    assert 1 <= record["chunks_sent"] < 500


async def _stream_lines(base: str, body: dict[str, object]) -> list[str]:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    # Only the creation time may differ between two runs.
    return [re.sub(r'"created":\d+', '"created":0', line) for line in response.text.splitlines()]


async def test_the_lean_fake_streams_the_same_bytes_as_the_starlette_one() -> None:
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "same"}],
    }
    streams = []
    for lean in (False, True):
        command = [sys.executable, "-m", "tests.fakes", "--provider", "openai", "--port", "0"]
        command += ["--tokens", "4", "--delay-ms", "1", *(["--lean"] if lean else [])]
        process = await anyio.open_process(command, cwd=REPO)
        try:
            with anyio.fail_after(10):
                streams.append(await _stream_lines(await _base_url(process), body))
        finally:
            process.terminate()
            with anyio.fail_after(10):
                await process.wait()
            await process.aclose()
    starlette, lean_ = streams
    assert lean_ == starlette
    assert sum(line.startswith('data: {"id"') for line in lean_) == 7  # role, 4, stop, usage
    assert lean_[-2:] == ["data: [DONE]", ""]


async def test_scenarios_can_be_queued_over_http() -> None:
    command = [sys.executable, "-m", "tests.fakes", "--provider", "openai", "--port", "0"]
    process = await anyio.open_process(command, cwd=REPO)
    scenario = {
        "tokens": ["a"],
        "tool_calls": [{"name": "lookup", "arguments": ['{"q":', ' "x"}'], "id": "call_q"}],
    }
    try:
        with anyio.fail_after(10):
            base = await _base_url(process)
            async with httpx.AsyncClient(base_url=base) as client:
                queued = await client.post("/_fake/queue", json={"scenarios": [scenario]})
                request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
                first = await client.post("/v1/chat/completions", json=request)
                second = await client.post("/v1/chat/completions", json=request)
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    assert queued.json() == {"queued": 1}
    (call,) = first.json()["choices"][0]["message"]["tool_calls"]
    assert (call["id"], call["function"]["arguments"]) == ("call_q", '{"q": "x"}')
    # Then the default again.
    assert second.json()["choices"][0]["message"].get("tool_calls") is None
