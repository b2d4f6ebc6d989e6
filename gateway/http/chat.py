"""``POST /api/v1/chat/completions``: the OpenAI-compatible chat endpoint.

``stream: true`` (or the ``/stream`` variant) answers with OpenAI's SSE chunk
stream (:mod:`gateway.http._stream`); otherwise one ``chat.completion`` object.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.agents import Prepared
from gateway.errors import GatewayError
from gateway.http._access import require_principal
from gateway.http._body import read_body
from gateway.http._chat_request import ChatCompletionBody, parse_body
from gateway.http._responses import JSON
from gateway.http._stream import ChatStreamResponse
from gateway.http.openapi import describe
from gateway.providers.base import ChatMessage, Choice, Completion
from gateway.request_id import set_request_id
from gateway.services import Services, services_of
from gateway.telemetry import ChatSummary


@describe(
    summary="Chat completion (OpenAI-compatible; stream: true answers SSE)", body=ChatCompletionBody
)
async def chat_completions(request: Request) -> Response:
    return await _chat(request, force_stream=False)


@describe(summary="Chat completion, always streamed (SSE)", body=ChatCompletionBody)
async def chat_completions_stream(request: Request) -> Response:
    return await _chat(request, force_stream=True)


async def _chat(request: Request, *, force_stream: bool) -> Response:
    principal = require_principal(request)
    services = services_of(request)
    try:
        raw = await read_body(request, services.settings.max_request_bytes)
    except ClientDisconnect:
        # Gone before its request arrived whole: nothing was started, nobody to answer.
        return Response(status_code=400)
    body = parse_body(raw)
    stream = force_stream or body.stream
    messages = body.chat_messages()
    summary = ChatSummary(
        request_id=f"chatcmpl-{uuid.uuid4().hex}",
        transport="http",
        principal=principal.id,
        model=body.model,
        stream=stream,
        agent=body.agent,
        on_emit=services.metrics.observe_chat,
    )
    set_request_id(request, summary.request_id)  # error responses carry it too
    if services.settings.log_content:
        summary.prompt = _last_user_text(messages)
    try:
        prepared = services.orchestrator.prepare(
            messages=messages,
            transport="http",
            model=body.model,
            agent=body.agent,
            params=body.params(),
            options=body.options(),
            streamed=stream,
            caller=principal,
        )
    except GatewayError as err:
        summary.failed(err)
        summary.emit()
        raise
    summary.resolved(prepared.route.requested_model, prepared.agent)
    if stream:
        return ChatStreamResponse(
            services.router,
            services.http_streams,
            prepared,
            summary,
            include_usage=body.include_usage,
            log_content=services.settings.log_content,
        )
    return await _complete(services, prepared, summary)


async def _complete(services: Services, prepared: Prepared, summary: ChatSummary) -> Response:
    try:
        target, completion = await services.router.complete(prepared.route, prepared.request)
    except GatewayError as err:
        summary.failed(err)
        summary.emit()
        raise
    except BaseException:
        summary.cancelled()
        summary.emit()
        raise
    summary.routed(target.provider, target.model)
    summary.finish_reason = completion.finish_reason
    summary.usage(completion.usage)
    if services.settings.log_content:
        summary.completion = completion.text
    summary.emit()
    return JSON(
        _completion_object(summary.request_id, prepared.route.requested_model, completion),
        headers={"x-request-id": summary.request_id},
    )


def _completion_object(completion_id: str, model: str, completion: Completion) -> dict[str, Any]:
    usage = completion.usage
    prompt = (usage.input_tokens if usage else None) or 0
    output = (usage.output_tokens if usage else None) or 0
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [_choice_object(i, c) for i, c in enumerate(completion.choices)],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        },
    }


def _choice_object(index: int, choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text,
        "refusal": choice.refusal,
    }
    if choice.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in choice.tool_calls
        ]
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning  # as compatible servers name it
    return {
        "index": index,
        "message": message,
        "logprobs": choice.logprobs,
        "finish_reason": choice.finish_reason,
    }


def _last_user_text(messages: list[ChatMessage]) -> str | None:
    return next((m.text for m in reversed(messages) if m.role == "user"), None)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/api/v1/chat/completions/stream", chat_completions_stream, methods=["POST"]),
    ]
