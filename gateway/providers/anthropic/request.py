"""The Messages API request body for a :class:`ChatRequest`: pure, no I/O.

- system turns -> the top-level ``system``;
- image parts -> ``image`` blocks (``data:`` URLs as base64 sources, others as URL sources);
- an assistant turn's tool calls -> ``tool_use`` blocks (arguments parsed into ``input``);
- ``tool`` turns -> ``tool_result`` blocks in a user turn: consecutive results, and
  a user message right after them, become one user turn, as the API requires;
- tools -> ``{name, description, input_schema}``; ``tool_choice`` ``auto|required|none|
  {function}`` -> ``auto|any|none|{type: tool, name}``; ``parallel_tool_calls: false``
  -> ``disable_parallel_tool_use``;
- ``response_format`` ``json_schema`` -> ``output_config.format`` (the API's structured
  outputs); ``json_object`` (any JSON object, no schema) has no such form, so it is a
  forced tool :data:`ANSWER_TOOL` taking any object, whose input the decoder turns
  back into the answer's text;
- ``reasoning_effort`` -> extended ``thinking`` with a token budget per level;
- ``user`` -> ``metadata.user_id``.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import ValidationFailed
from gateway.providers.base import ChatMessage, ChatRequest, ImagePart, NamedTool, TextPart

# The Messages API requires max_tokens; used when neither the caller nor the setting
# ``anthropic_default_max_tokens`` sets one.
DEFAULT_MAX_TOKENS = 4096
# The forced tool whose input is a ``json_object`` answer (unwrapped into text).
ANSWER_TOOL = "json_answer"
# Thinking budgets per reasoning_effort (the API's minimum budget is 1024).
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}


def build_body(
    request: ChatRequest, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    system = [m.text for m in request.messages if m.role == "system"]
    params = request.params
    options = request.options
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _turns(request.messages),
        "max_tokens": params.max_tokens or default_max_tokens,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    # The current SDK no longer declares the sampling fields, but the API still
    # takes them for the models that support them (the body is sent as it is).
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    tools = [_tool(t.name, t.description, t.parameters) for t in options.tools]
    choice = _tool_choice(options.tool_choice)
    fmt = options.response_format
    if fmt is not None and fmt.type == "json_schema":
        body["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema or {}}}
    elif fmt is not None:
        tools.append(
            _tool(ANSWER_TOOL, "Give the answer as this tool's input.", {"type": "object"})
        )
        choice = {"type": "tool", "name": ANSWER_TOOL}
    if options.parallel_tool_calls is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    budget = THINKING_BUDGETS.get(options.reasoning_effort or "")
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        # The budget counts against max_tokens, which must exceed it.
        body["max_tokens"] += budget
    if options.user is not None:
        body["metadata"] = {"user_id": options.user}
    return body


def _turns(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.role
        if role == "system":
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.text,
            }
            _append_user(turns, [block])
        elif role == "user":
            _append_user(turns, _user_content(message))
        else:
            turns.append({"role": "assistant", "content": _assistant_content(message)})
    return turns


def _append_user(turns: list[dict[str, Any]], content: str | list[dict[str, Any]]) -> None:
    """A user turn, merged into the previous one when that is a user turn too."""
    if turns and turns[-1]["role"] == "user":
        turns[-1]["content"] = [*_blocks(turns[-1]["content"]), *_blocks(content)]
    else:
        turns.append({"role": "user", "content": content})


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _user_content(message: ChatMessage) -> str | list[dict[str, Any]]:
    content = message.content
    if isinstance(content, str):
        return content
    return [_part(p) for p in content]


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    inline = part.inline
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    media_type, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_content(message: ChatMessage) -> list[dict[str, Any]] | str:
    if not message.tool_calls:
        return message.text
    blocks: list[dict[str, Any]] = []
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call.arguments)}
        )
    return blocks


def _input(arguments: str) -> Any:
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise ValidationFailed(
            "a tool call's arguments must be JSON to be sent to anthropic", param="messages"
        ) from None
    if not isinstance(value, dict):
        raise ValidationFailed("a tool call's arguments must be a JSON object", param="messages")
    return value


def _tool(name: str, description: str | None, parameters: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "name": name,
        "input_schema": parameters if parameters is not None else {"type": "object"},
    }
    if description is not None:
        tool["description"] = description
    return tool


def _tool_choice(choice: str | NamedTool | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, NamedTool):
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
