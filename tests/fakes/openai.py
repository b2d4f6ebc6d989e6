"""A fake OpenAI speaking Chat Completions: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Streams are SSE exactly as the real API sends them: one ``data: {chunk}`` line
and a blank line per chunk, ``"usage": null`` on every chunk, the usage chunk
(``"choices": []``) last when ``stream_options.include_usage`` is set, then
``data: [DONE]``.

With ``n`` > 1 the choices stream interleaved, each chunk one choice (its
``index``): every choice's role chunk first, then token by token. Choice 0 is the
scenario's answer; choice ``i`` > 0 is its first ``len(tokens) - i`` tokens (at
least one), each with ``i`` appended, and ends with ``finish_reason: "length"``
right after its last token, while the others go on. With ``logprobs`` every
content chunk carries ``logprobs: {"content": [{token, logprob, bytes,
top_logprobs}], "refusal": null}`` for its token (``top_logprobs`` entries as
asked): :func:`choice_tokens` and :func:`token_logprobs` say what was sent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.app import fake_app
from tests.fakes.base import ConnectionReset, FakeUpstream, RequestRecord, Scenario, TrackedStream

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")
_FINGERPRINT = "fp_fake"
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def create_app(upstream: FakeUpstream, models: Sequence[str] = DEFAULT_MODELS) -> Starlette:
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        stream = body.get("stream") is True
        record = upstream.record("POST", request.url.path, dict(request.headers), body, stream)
        denied = _check_key(upstream, request, record)
        if denied is not None:
            return denied
        scenario = upstream.next_scenario()
        model = body.get("model", "")
        if scenario.status is not None:
            record.finish("error")
            return _status_error(scenario)
        if not stream:
            if scenario.delay_s:
                await anyio.sleep(scenario.delay_s * len(scenario.tokens))
            record.finish("completed")
            return _json(_completion(model, scenario, int(body.get("n") or 1)))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        shape = _Shape(
            int(body.get("n") or 1),
            body.get("logprobs") is True,
            int(body.get("top_logprobs") or 0),
        )
        return TrackedStream(
            record,
            lambda rec: _chunks(rec, scenario, model, include_usage, shape),
            media_type="text/event-stream",
        )

    async def list_models(request: Request) -> Response:
        record = upstream.record("GET", request.url.path, dict(request.headers), None, False)
        denied = _check_key(upstream, request, record)
        if denied is not None:
            return denied
        record.finish("completed")
        return _json(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 1700000000, "owned_by": "openai"}
                    for name in models
                ],
            }
        )

    return fake_app(
        [
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
        ]
    )


@dataclass(frozen=True)
class _Shape:
    """What the request asked of the stream's shape: ``n``, ``logprobs``, ``top_logprobs``."""

    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0


def choice_tokens(scenario: Scenario, choice: int) -> list[str]:
    """The text pieces the streamed choice ``choice`` is made of."""
    if choice == 0:
        return list(scenario.tokens)
    kept = scenario.tokens[: max(1, len(scenario.tokens) - choice)]
    return [f"{token}{choice}" for token in kept]


def token_logprobs(token: str, position: int, choice: int, top: int) -> dict[str, Any]:
    """The ``logprobs`` object of the content chunk of ``token`` (the ``position``-th piece)."""
    logprob = -round(0.125 * (position + 1) + choice, 4)
    alternatives = [
        {"token": token, "logprob": logprob, "bytes": list(token.encode())},
        {"token": token[::-1] + "?", "logprob": logprob - 1.5, "bytes": list(b"?")},
        {"token": "!", "logprob": logprob - 3.0, "bytes": [33]},
    ]
    entry = {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": alternatives[:top],
    }
    return {"content": [entry], "refusal": None}


async def _chunks(
    record: RequestRecord,
    scenario: Scenario,
    model: str,
    include_usage: bool,
    shape: _Shape = _Shape(),
) -> AsyncIterator[bytes]:
    ident = f"chatcmpl-fake{record.id}"
    created = int(time.time())

    def chunk(
        delta: dict[str, Any],
        finish_reason: str | None = None,
        index: int = 0,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        choice = {
            "index": index,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": finish_reason,
        }
        return _data(_chunk_base(ident, created, model, [choice]))

    further = {number: choice_tokens(scenario, number) for number in range(1, shape.n)}

    def content(number: int, tokens: list[str], position: int) -> bytes:
        token = tokens[position]
        logprobs = (
            token_logprobs(token, position, number, shape.top_logprobs) if shape.logprobs else None
        )
        return chunk({"content": token}, None, number, logprobs)

    for number in range(shape.n):
        yield chunk({"role": "assistant", "content": "", "refusal": None}, None, number)
    for index in range(len(scenario.tokens) + 1):
        if scenario.stall_after == index:
            record.finish("stalled")
            await anyio.sleep_forever()
        if scenario.garbage_after == index:
            record.finish("error")
            yield b'data: {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choi\n\n'
            return
        if scenario.end_after == index:
            record.finish("error")
            return
        if scenario.reset_after == index:
            record.finish("reset")
            raise ConnectionReset
        if scenario.error_after == index:
            record.finish("error")
            error = {
                "message": "The server had an error while processing your request.",
                "type": scenario.error_type or "server_error",
                "param": None,
                "code": None,
            }
            yield _data({"error": error})
            return
        if index == len(scenario.tokens):
            break
        if scenario.delay_s:
            await anyio.sleep(scenario.delay_s)
        if scenario.ping:
            yield b": ping\n\n"
        yield content(0, scenario.tokens, index)
        for number, tokens in further.items():
            if index < len(tokens):
                yield content(number, tokens, index)
                if index == len(tokens) - 1:
                    yield chunk({}, "length", number)
        record.chunks_sent += 1
    for piece in scenario.refusal:
        yield chunk({"refusal": piece})
    for number, call in enumerate(scenario.tool_calls):
        # The first piece names the call (empty arguments), then argument fragments
        # with the index alone, as the API streams them.
        first = {
            "index": number,
            "id": call.id or f"call_fake{number}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield chunk({"tool_calls": [first]})
        for piece in call.arguments:
            if scenario.delay_s:
                await anyio.sleep(scenario.delay_s)
            yield chunk({"tool_calls": [{"index": number, "function": {"arguments": piece}}]})
            record.chunks_sent += 1
    for number, tokens in further.items():
        if not tokens:  # no text to answer with: it ends at once
            yield chunk({}, "length", number)
    yield chunk({}, _finish_reason(scenario))
    if include_usage:
        usage_chunk = _chunk_base(ident, created, model, [])
        usage_chunk["usage"] = _usage(scenario)
        yield _data(usage_chunk)
    yield b"data: [DONE]\n\n"


def _chunk_base(ident: str, created: int, model: str, choices: list[Any]) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "choices": choices,
        "usage": None,
    }


def _finish_reason(scenario: Scenario) -> str:
    return scenario.finish_reason or ("tool_calls" if scenario.tool_calls else "stop")


def _completion(model: str, scenario: Scenario, n: int = 1) -> dict[str, Any]:
    text = "".join(scenario.tokens)
    refusal = "".join(scenario.refusal) or None
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not (scenario.tool_calls or refusal) else None,
        "refusal": refusal,
    }
    if scenario.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_fake{number}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.whole_arguments},
            }
            for number, call in enumerate(scenario.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        # ``n`` choices: the same answer n times, told apart by index.
        "choices": [
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(scenario),
            }
            for index in range(n)
        ],
        "usage": _usage(scenario),
    }


def _usage(scenario: Scenario) -> dict[str, int]:
    prompt, completion = scenario.usage_counts()
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _check_key(upstream: FakeUpstream, request: Request, record: RequestRecord) -> Response | None:
    if upstream.api_key is None:
        return None
    presented = request.headers.get("authorization", "").removeprefix("Bearer ")
    if presented == upstream.api_key:
        return None
    record.finish("error")
    # The real API echoes the rejected key masked, its first and last characters
    # kept: enough of a key that the gateway must not pass it on either.
    masked = presented[:8] + "*" * max(len(presented) - 12, 0) + presented[-4:]
    return _error_body(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def _status_error(scenario: Scenario) -> Response:
    status = scenario.status or 500
    kind, code = _ERROR_TYPES.get(status, ("server_error", None))
    headers: dict[str, str] = {}
    if scenario.retry_after is not None:
        headers["retry-after"] = scenario.retry_after
    if scenario.retry_after_ms is not None:
        headers["retry-after-ms"] = scenario.retry_after_ms
    return _error_body(status, f"fake upstream error {status}", kind, code, headers)


def _error_body(
    status: int,
    message: str,
    kind: str,
    code: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json(body, status=status, headers=headers)


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
