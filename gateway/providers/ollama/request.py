"""The ``/api/chat`` request body for a :class:`ChatRequest`: pure, no I/O.

- image parts -> the message's base64 ``images`` (Ollama takes no URLs: an
  ``https:`` image is refused by the provider's check before this runs);
- an assistant turn's tool calls -> ``tool_calls`` with ``arguments`` as an object;
- a ``tool`` turn -> ``{"role": "tool", "content", "tool_name"}``, the name looked up
  from the call it answers (Ollama has no call ids);
- tools -> ``tools`` (the same shape as OpenAI's);
- ``response_format``: ``json_object`` -> ``format: "json"``,
  ``json_schema`` -> ``format: <schema>``;
- ``reasoning_effort`` -> ``think: true``; ``seed`` and the penalties -> ``options``.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import ValidationFailed
from gateway.providers.base import ChatMessage, ChatRequest, ImagePart


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    names = {call.id: call.name for m in request.messages for call in m.tool_calls}
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m, names) for m in request.messages],
        "stream": stream,
    }
    p = request.params
    o = request.options
    options: dict[str, Any] = {}
    if p.temperature is not None:
        options["temperature"] = p.temperature
    if p.top_p is not None:
        options["top_p"] = p.top_p
    if p.max_tokens is not None:
        options["num_predict"] = p.max_tokens
    if p.stop:
        options["stop"] = list(p.stop)
    for name in ("seed", "presence_penalty", "frequency_penalty"):
        value = getattr(o, name)
        if value is not None:
            options[name] = value
    if options:
        body["options"] = options
    if o.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description or "",
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in o.tools
        ]
    fmt = o.response_format
    if fmt is not None:
        body["format"] = "json" if fmt.type == "json_object" else dict(fmt.schema or {})
    if o.reasoning_effort is not None:
        body["think"] = True
    return body


def _message(message: ChatMessage, names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    images = [
        inline[1]
        for part in message.parts
        if isinstance(part, ImagePart) and (inline := part.inline) is not None
    ]
    if images:
        out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": call.name, "arguments": _arguments(call.arguments)}}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        name = names.get(message.tool_call_id or "")
        if name is not None:
            out["tool_name"] = name
    return out


def _arguments(arguments: str) -> Any:
    if not arguments.strip():
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise ValidationFailed(
            "a tool call's arguments must be JSON to be sent to ollama", param="messages"
        ) from None
