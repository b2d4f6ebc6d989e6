"""The Chat Completions request body for a :class:`ChatRequest`: pure, no I/O.

The provider contract is modelled on this API, so the translation is a
pass-through: every option the request sets goes into the body as it is.
"""

from __future__ import annotations

from typing import Any

from gateway.providers.base import (
    ChatMessage,
    ChatOptions,
    ChatRequest,
    ImagePart,
    NamedTool,
    TextPart,
)

# The scalar options that go into the body under their own names when set.
_SCALARS = (
    "parallel_tool_calls",
    "seed",
    "user",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "reasoning_effort",
)


def build_body(request: ChatRequest, *, max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
    }
    params = request.params
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        body[max_tokens_field] = params.max_tokens
    if params.stop:
        body["stop"] = list(params.stop)
    _options(body, request.options)
    return body


def _message(message: ChatMessage) -> dict[str, Any]:
    out = _unnamed(message)
    if message.name is not None and message.role != "tool":
        out["name"] = message.name
    return out


def _unnamed(message: ChatMessage) -> dict[str, Any]:
    role = message.role
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        elif out["content"] is None:
            out["content"] = ""
        return out
    content = message.content
    if isinstance(content, str):
        return {"role": role, "content": content}
    return {"role": role, "content": [_part(p) for p in content]}


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _options(body: dict[str, Any], options: ChatOptions) -> None:
    if options.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": _function(t.name, t.description, t.parameters, t.strict),
            }
            for t in options.tools
        ]
    choice = options.tool_choice
    if isinstance(choice, NamedTool):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None:
        body["tool_choice"] = choice
    fmt = options.response_format
    if fmt is not None:
        if fmt.type == "json_object":
            body["response_format"] = {"type": "json_object"}
        else:
            spec: dict[str, Any] = {"name": fmt.name or "response"}
            if fmt.description is not None:
                spec["description"] = fmt.description
            if fmt.schema is not None:
                spec["schema"] = fmt.schema
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
    for name in _SCALARS:
        value = getattr(options, name)
        if value is not None:
            body[name] = value
    body.update(options.passthrough)


def _function(
    name: str, description: str | None, parameters: Any, strict: bool | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if description is not None:
        out["description"] = description
    if parameters is not None:
        out["parameters"] = parameters
    if strict is not None:
        out["strict"] = strict
    return out
