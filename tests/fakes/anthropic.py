"""A fake Anthropic speaking the Messages API: ``POST /v1/messages`` and ``GET /v1/models``.

Streams are SSE with ``event:`` lines in the real order: ``message_start``,
(an optional thinking block,) ``content_block_start``, ``ping``,
``content_block_delta``..., ``content_block_stop``, ``message_delta`` (stop
reason and cumulative ``output_tokens``), ``message_stop``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.app import fake_app
from tests.fakes.base import ConnectionReset, FakeUpstream, RequestRecord, Scenario, TrackedStream

DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def create_app(upstream: FakeUpstream, models: Sequence[str] = DEFAULT_MODELS) -> Starlette:
    async def messages(request: Request) -> Response:
        body = orjson.loads(await request.body())
        stream = body.get("stream") is True
        record = upstream.record("POST", request.url.path, dict(request.headers), body, stream)
        denied = _check_headers(upstream, request, record)
        if denied is not None:
            return denied
        if not isinstance(body.get("max_tokens"), int):
            record.finish("error")
            return _error(400, "invalid_request_error", "max_tokens: Field required")
        scenario = upstream.next_scenario()
        model = body.get("model", "")
        if scenario.status is not None:
            record.finish("error")
            return _status_error(scenario)
        if not stream:
            if scenario.delay_s:
                await anyio.sleep(scenario.delay_s * len(scenario.tokens))
            record.finish("completed")
            return _json(_message(record, model, scenario))
        return TrackedStream(
            record, lambda rec: _events(rec, scenario, model), media_type="text/event-stream"
        )

    async def list_models(request: Request) -> Response:
        record = upstream.record("GET", request.url.path, dict(request.headers), None, False)
        denied = _check_headers(upstream, request, record)
        if denied is not None:
            return denied
        record.finish("completed")
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name.replace("-", " ").title(),
                "created_at": "2025-09-29T00:00:00Z",
                "lifecycle": "active",
            }
            for name in models
        ]
        return _json(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    return fake_app(
        [
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
        ]
    )


async def _events(record: RequestRecord, scenario: Scenario, model: str) -> AsyncIterator[bytes]:
    input_tokens, output_tokens = scenario.usage_counts()
    start = _message(record, model, scenario)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {"input_tokens": input_tokens, "output_tokens": 1}
    yield _event("message_start", {"type": "message_start", "message": start})
    index = 0
    if scenario.thinking:
        yield _block_start(index, {"type": "thinking", "thinking": "", "signature": ""})
        for piece in scenario.thinking:
            yield _delta(index, {"type": "thinking_delta", "thinking": piece})
        yield _delta(index, {"type": "signature_delta", "signature": "c2lnbmF0dXJl"})
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    yield _block_start(index, {"type": "text", "text": ""})
    yield _event("ping", {"type": "ping"})
    for position in range(len(scenario.tokens) + 1):
        if scenario.stall_after == position:
            record.finish("stalled")
            await anyio.sleep_forever()
        if scenario.garbage_after == position:
            record.finish("error")
            yield b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
            return
        if scenario.end_after == position:
            record.finish("error")
            return
        if scenario.reset_after == position:
            record.finish("reset")
            raise ConnectionReset
        if scenario.error_after == position:
            record.finish("error")
            kind = scenario.error_type or "overloaded_error"
            error = {"type": kind, "message": "Overloaded" if kind == "overloaded_error" else kind}
            yield _event("error", {"type": "error", "error": error})
            return
        if position == len(scenario.tokens):
            break
        if scenario.delay_s:
            await anyio.sleep(scenario.delay_s)
        if scenario.ping:
            yield _event("ping", {"type": "ping"})
        yield _delta(index, {"type": "text_delta", "text": scenario.tokens[position]})
        record.chunks_sent += 1
    yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    for number, call in enumerate(scenario.tool_calls):
        # Each call is its own block after the text: input {} at the start, then the
        # JSON text in input_json_delta fragments (the first one empty, as the API does).
        index += 1
        block = {
            "type": "tool_use",
            "id": _call_id(call.id, number),
            "name": call.name,
            "input": {},
        }
        yield _block_start(index, block)
        yield _delta(index, {"type": "input_json_delta", "partial_json": ""})
        for piece in call.arguments:
            yield _delta(index, {"type": "input_json_delta", "partial_json": piece})
            record.chunks_sent += 1
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(scenario), "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def _message(record: RequestRecord, model: str, scenario: Scenario) -> dict[str, Any]:
    input_tokens, output_tokens = scenario.usage_counts()
    return {
        "id": f"msg_fake{record.id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "text", "text": "".join(scenario.tokens)},
            *(
                {
                    "type": "tool_use",
                    "id": _call_id(call.id, number),
                    "name": call.name,
                    "input": orjson.loads(call.whole_arguments or "{}"),
                }
                for number, call in enumerate(scenario.tool_calls)
            ),
        ],
        "stop_reason": _stop_reason(scenario),
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _stop_reason(scenario: Scenario) -> str:
    return scenario.finish_reason or ("tool_use" if scenario.tool_calls else "end_turn")


def _call_id(given: str | None, number: int) -> str:
    return given or f"toolu_fake{number:02d}"


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return _event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _check_headers(
    upstream: FakeUpstream, request: Request, record: RequestRecord
) -> Response | None:
    if "anthropic-version" not in request.headers:
        record.finish("error")
        return _error(400, "invalid_request_error", "anthropic-version: header is required")
    if upstream.api_key is None:
        return None
    # Anthropic takes the key as ``x-api-key``; current SDKs send it as a bearer token.
    presented = request.headers.get("x-api-key") or request.headers.get(
        "authorization", ""
    ).removeprefix("Bearer ")
    if presented == upstream.api_key:
        return None
    record.finish("error")
    # Echoing the rejected key lets tests prove the gateway never passes it on.
    return _error(401, "authentication_error", f"invalid x-api-key: {presented}")


def _status_error(scenario: Scenario) -> Response:
    status = scenario.status or 500
    headers: dict[str, str] = {}
    if scenario.retry_after is not None:
        headers["retry-after"] = scenario.retry_after
    if scenario.retry_after_ms is not None:
        headers["retry-after-ms"] = scenario.retry_after_ms
    kind = _ERROR_TYPES.get(status, "api_error")
    return _error(status, kind, f"fake upstream error {status}", headers)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_fake",
    }
    return _json(body, status=status, headers=headers)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
