"""The OpenAI chat-completions request shape, validated once at the edge, for both transports.

``POST /api/v1/chat/completions`` (:mod:`gateway.http._chat_request`) and the
WebSocket ``response.create`` (:mod:`gateway.ws.messages`) take the same
messages, tools, tool choice and output format; both parse them with these
models and turn them into the provider contract (:mod:`gateway.providers.base`)
with :func:`to_messages` and :func:`to_options`.

The models are strict and forbid unknown fields: a part or field the gateway does
not know is a ``validation_error`` naming it, never silently dropped. The few
fields the ``openai`` SDK writes back when a client appends a received assistant
message as it is (``refusal``, ``annotations``, ``audio``, ``function_call`` as
``null``) are declared and accepted only empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from gateway.providers.base import (
    ChatMessage,
    ChatOptions,
    ContentPart,
    ImagePart,
    NamedTool,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)

_ToolName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --- messages ---------------------------------------------------------------------


class TextContent(_Strict):
    type: Literal["text"]
    text: str


class ImageUrl(_Strict):
    url: str = Field(min_length=1, description="A data: URL (base64) or an https: URL.")
    detail: Literal["auto", "low", "high"] | None = None


class ImageContent(_Strict):
    type: Literal["image_url"]
    image_url: ImageUrl


UserContent: TypeAlias = Annotated[TextContent | ImageContent, Field(discriminator="type")]


class FunctionCall(_Strict):
    name: _ToolName
    arguments: str = Field(description="The arguments as JSON text.")


class ToolCallIn(_Strict):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Strict):
    role: Literal["system", "developer"]
    content: str | list[TextContent]
    name: str | None = None


class UserMessage(_Strict):
    role: Literal["user"]
    content: str | list[UserContent]
    name: str | None = None


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: str | list[TextContent] | None = None
    tool_calls: list[ToolCallIn] | None = None
    name: str | None = None
    # Written back by the SDK as ``null``/``[]`` when a received message is re-sent.
    refusal: None = None
    annotations: list[Any] | None = Field(None, max_length=0)
    audio: None = None
    function_call: None = None


class ToolMessage(_Strict):
    role: Literal["tool"]
    tool_call_id: str = Field(min_length=1)
    content: str | list[TextContent]


MessageIn: TypeAlias = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


# --- tools and output format ------------------------------------------------------------


class FunctionDef(_Strict):
    name: _ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="The arguments' JSON Schema.")
    strict: bool | None = None


class ToolIn(_Strict):
    type: Literal["function"]
    function: FunctionDef


class _FunctionName(_Strict):
    name: _ToolName


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: _FunctionName


ToolChoiceIn: TypeAlias = Literal["auto", "none", "required"] | NamedToolChoice


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaSpec(_Strict):
    name: _ToolName
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormatIn: TypeAlias = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


# --- into the provider contract ---------------------------------------------------------


def to_messages(
    messages: Sequence[SystemMessage | UserMessage | AssistantMessage | ToolMessage],
) -> list[ChatMessage]:
    return [_message(m) for m in messages]


def _message(message: SystemMessage | UserMessage | AssistantMessage | ToolMessage) -> ChatMessage:
    if isinstance(message, SystemMessage):
        # OpenAI's newer "developer" role is the system role for every other provider,
        # and OpenAI itself treats the two alike (each as the other, by model).
        return ChatMessage("system", _text(message.content), name=message.name)
    if isinstance(message, UserMessage):
        content = message.content
        if isinstance(content, str):
            return ChatMessage("user", content, name=message.name)
        return ChatMessage("user", tuple(_part(p) for p in content), name=message.name)
    if isinstance(message, AssistantMessage):
        calls = tuple(
            ToolCall(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()
        )
        return ChatMessage("assistant", _text(message.content), tool_calls=calls, name=message.name)
    return ChatMessage("tool", _text(message.content), tool_call_id=message.tool_call_id)


def _text(content: str | list[TextContent] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def _part(part: TextContent | ImageContent) -> ContentPart:
    if isinstance(part, TextContent):
        return TextPart(part.text)
    return ImagePart(part.image_url.url, part.image_url.detail)


def to_tools(tools: Sequence[ToolIn] | None) -> tuple[Tool, ...]:
    return tuple(
        Tool(t.function.name, t.function.description, t.function.parameters, t.function.strict)
        for t in tools or ()
    )


def to_tool_choice(choice: ToolChoiceIn | None) -> ToolChoice | None:
    if choice is None or isinstance(choice, str):
        return choice
    return NamedTool(choice.function.name)


def to_response_format(
    spec: TextFormat | JsonObjectFormat | JsonSchemaFormat | None,
) -> ResponseFormat | None:
    if spec is None or isinstance(spec, TextFormat):
        return None  # plain text is what every provider does anyway
    if isinstance(spec, JsonObjectFormat):
        return ResponseFormat("json_object")
    js = spec.json_schema
    return ResponseFormat("json_schema", js.name, js.schema_, js.strict, js.description)


def to_options(
    *,
    tools: Sequence[ToolIn] | None = None,
    tool_choice: ToolChoiceIn | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None = None,
    **passthrough: Any,
) -> ChatOptions:
    """The request options; ``passthrough`` are the scalar ones (``seed``, ``n``...)."""
    return ChatOptions(
        tools=to_tools(tools),
        tool_choice=to_tool_choice(tool_choice),
        parallel_tool_calls=parallel_tool_calls,
        response_format=to_response_format(response_format),
        **passthrough,
    )
