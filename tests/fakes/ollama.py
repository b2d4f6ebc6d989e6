"""A fake Ollama speaking its native REST API: ``POST /api/chat`` (NDJSON) and ``GET /api/tags``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.app import fake_app
from tests.fakes.base import ConnectionReset, FakeUpstream, RequestRecord, Scenario, TrackedStream

DEFAULT_MODELS = ("llama3.2:latest", "qwen2.5:0.5b")


def create_app(upstream: FakeUpstream, models: Sequence[str] = DEFAULT_MODELS) -> Starlette:
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        # Ollama streams unless told otherwise.
        stream = body.get("stream", True) is not False
        record = upstream.record("POST", "/api/chat", dict(request.headers), body, stream)
        scenario = upstream.next_scenario()
        model = body.get("model", "")
        if scenario.status is not None:
            record.finish("error")
            return _error(scenario, model)
        if not stream:
            return _complete(record, scenario, model)
        return TrackedStream(
            record, lambda rec: _lines(rec, scenario, model), media_type="application/x-ndjson"
        )

    async def tags(request: Request) -> Response:
        record = upstream.record("GET", "/api/tags", dict(request.headers), None, False)
        record.finish("completed")
        return _json({"models": [_model_entry(name) for name in models]})

    return fake_app(
        [
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/tags", tags, methods=["GET"]),
        ]
    )


async def _lines(record: RequestRecord, scenario: Scenario, model: str) -> AsyncIterator[bytes]:
    for piece in scenario.thinking:
        yield _line(_chunk(model, "", thinking=piece))
    for index in range(len(scenario.tokens) + 1):
        if scenario.stall_after == index:
            record.finish("stalled")
            await anyio.sleep_forever()
        if scenario.garbage_after == index:
            record.finish("error")
            yield b'{"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z", "mess\n'
            return
        if scenario.end_after == index:
            record.finish("error")
            return
        if scenario.reset_after == index:
            record.finish("reset")
            raise ConnectionReset
        if scenario.error_after == index:
            record.finish("error")
            message = scenario.error_type or "model runner has unexpectedly stopped"
            yield _line({"error": message})
            return
        if index == len(scenario.tokens):
            break
        if scenario.delay_s:
            await anyio.sleep(scenario.delay_s)
        yield _line(_chunk(model, scenario.tokens[index]))
        record.chunks_sent += 1
    if scenario.tool_calls:
        # Whole calls, arguments as objects, no ids: all of them in one message line.
        line = _chunk(model, "")
        line["message"]["tool_calls"] = _tool_calls(scenario)
        yield _line(line)
        record.chunks_sent += 1
    yield _line(_final(model, scenario))


def _complete(record: RequestRecord, scenario: Scenario, model: str) -> Response:
    record.finish("completed")
    final = _final(model, scenario)
    final["message"]["content"] = "".join(scenario.tokens)
    if scenario.tool_calls:
        final["message"]["tool_calls"] = _tool_calls(scenario)
    return _json(final)


def _tool_calls(scenario: Scenario) -> list[dict[str, Any]]:
    return [
        {"function": {"name": call.name, "arguments": orjson.loads(call.whole_arguments or "{}")}}
        for call in scenario.tool_calls
    ]


def _error(scenario: Scenario, model: str) -> Response:
    status = scenario.status or 500
    if status == 404:
        message = f"model '{model}' not found"
    elif status == 400:
        message = "invalid request"
    else:
        message = scenario.error_type or "server busy, please try again"
    headers = {}
    if scenario.retry_after:
        headers["retry-after"] = scenario.retry_after
    if scenario.retry_after_ms:
        headers["retry-after-ms"] = scenario.retry_after_ms
    return _json({"error": message}, status=status, headers=headers)


def _chunk(model: str, content: str, thinking: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return {"model": model, "created_at": _now(), "message": message, "done": False}


def _final(model: str, scenario: Scenario) -> dict[str, Any]:
    prompt_tokens, output_tokens = scenario.usage_counts()
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": scenario.finish_reason or "stop",
        "total_duration": 1_234_567_890,
        "load_duration": 12_345_678,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 23_456_789,
        "eval_count": output_tokens,
        "eval_duration": 987_654_321,
    }


def _model_entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 2_019_393_189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


def _line(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data) + b"\n"


def _json(
    data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
