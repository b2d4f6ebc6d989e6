"""The body ``useChat``'s ``DefaultChatTransport`` POSTs, validated once at the edge.

The transport sends ``{...body, id, messages, trigger, messageId}``: ``body`` is
whatever the app passes (here ``model``, ``agent``, sampling parameters and the
chat-completions ``tools``, ``tool_choice``, ``parallel_tool_calls`` and
``response_format``, validated as the HTTP API validates them), the
rest is the chat's state in the AI SDK's UI message shape, each message a list
of ``parts``. Only what reaches the model is kept: text parts become the
message's content, image ``file`` parts of a user message its image parts; an
assistant message's tool parts become its tool calls, each followed by a ``tool``
turn with the call's result, one assistant turn per step (``step-start``). Parts
that exist for the UI alone (``step-start``, ``reasoning`` the model already
produced, sources, ``data-*``) are dropped. What cannot be passed on faithfully
(other files, a tool call without its result yet) is refused with a 422 naming
the message, never silently dropped: a conversation with a part missing would
mean something else to the model.
A top-level field the body does not declare is refused with
``unsupported_parameter`` naming it, never ignored (#11): an app adding its own
``body`` fields gets told, instead of an answer that silently lacks them.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from gateway.chat_input import ResponseFormatIn, ToolChoiceIn, ToolIn, to_options
from gateway.errors import UnsupportedParameter
from gateway.http._chat_request import parse_json_body
from gateway.providers.base import (
    ChatMessage,
    ChatOptions,
    ChatParams,
    ContentPart,
    ImagePart,
    TextPart,
    ToolCall,
)

# Chat ids are path segments of the resume and stop routes and keys of the session
# manager: bounded, and without "/" so that every id has a stream URL.
CHAT_ID_PATTERN = r"^[^/]{1,128}$"

# Parts that only the UI needs: the model never sees them.
_UI_ONLY_PARTS = frozenset({"step-start", "reasoning", "source-url", "source-document"})
# Tool part states that carry the call's result (the SDK's ToolUIPart states).
_RESULT_STATES = frozenset({"output-available", "output-error", "output-denied"})


class _UIMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    id: str = Field(max_length=256)
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]]

    @model_validator(mode="after")
    def _known_parts(self) -> _UIMessage:
        for index, part in enumerate(self.parts):
            kind = part.get("type")
            if not isinstance(kind, str):
                raise ValueError(f"part {index} has no string 'type'")
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise ValueError(f"text part {index} needs a string 'text'")
            elif kind == "file":
                media_type, url = part.get("mediaType"), part.get("url")
                if not (isinstance(media_type, str) and isinstance(url, str)):
                    raise ValueError(f"file part {index} needs string 'mediaType' and 'url'")
                if self.role != "user" or not media_type.startswith("image/"):
                    raise ValueError(
                        f"file part {index}: only images in user messages are supported"
                    )
            elif _is_tool(kind):
                _check_tool_part(index, part, self.role)
            elif kind not in _UI_ONLY_PARTS and not kind.startswith("data-"):
                raise ValueError(f"part {index} of type '{kind[:64]}' is not supported")
        return self

    def to_chat(self) -> list[ChatMessage]:
        """This UI message as the turns a model sees (an assistant message with tool
        calls is one turn per step, each followed by its calls' results)."""
        if self.role != "assistant":
            return [self._plain()]
        out: list[ChatMessage] = []
        step: list[dict[str, Any]] = []
        for part in self.parts:
            if part["type"] == "step-start":
                out.extend(_assistant_step(step))
                step = []
            else:
                step.append(part)
        out.extend(_assistant_step(step))
        return out

    def _plain(self) -> ChatMessage:
        parts: list[ContentPart] = []
        for part in self.parts:
            if part["type"] == "text":
                parts.append(TextPart(part["text"]))
            elif part["type"] == "file":
                parts.append(ImagePart(part["url"]))
        if any(isinstance(p, ImagePart) for p in parts):
            return ChatMessage(self.role, tuple(parts))
        return ChatMessage(self.role, "".join(p.text for p in parts if isinstance(p, TextPart)))


def _is_tool(kind: str) -> bool:
    return kind.startswith("tool-") or kind == "dynamic-tool"


def _tool_name(part: dict[str, Any]) -> str:
    kind: str = part["type"]
    return str(part.get("toolName", "")) if kind == "dynamic-tool" else kind[len("tool-") :]


def _check_tool_part(index: int, part: dict[str, Any], role: str) -> None:
    if role != "assistant":
        raise ValueError(f"tool part {index} outside an assistant message")
    if not isinstance(part.get("toolCallId"), str) or not _tool_name(part):
        raise ValueError(f"tool part {index} needs a 'toolCallId' and a tool name")
    if part.get("state") not in _RESULT_STATES:
        raise ValueError(
            f"tool part {index} (call {str(part['toolCallId'])[:64]!r}) has no result yet"
        )


def _assistant_step(parts: list[dict[str, Any]]) -> list[ChatMessage]:
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    tools = [p for p in parts if _is_tool(p["type"])]
    if not tools:
        return [ChatMessage("assistant", text)] if text else []
    calls = tuple(ToolCall(p["toolCallId"], _tool_name(p), _arguments(p)) for p in tools)
    out = [ChatMessage("assistant", text, tool_calls=calls)]
    for part, call in zip(tools, calls, strict=True):
        out.append(ChatMessage("tool", _result_text(part), tool_call_id=call.id, name=call.name))
    return out


def _arguments(part: dict[str, Any]) -> str:
    """The call's arguments as JSON text. A call whose arguments never parsed (its
    ``input`` is the raw text, state ``output-error``) goes back as ``{}``: every
    provider wants an object there, and the error result says what went wrong."""
    value = part.get("input")
    return _json_text(value) if isinstance(value, dict) else "{}"


def _result_text(part: dict[str, Any]) -> str:
    state = part["state"]
    if state == "output-error":
        return f"error: {part.get('errorText', 'the tool failed')}"
    if state == "output-denied":
        return "error: the user denied this tool call"
    output = part.get("output")
    return output if isinstance(output, str) else _json_text(output)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


class UIChatBody(BaseModel):
    """``POST /api/v1/ui/chat``."""

    # Unknown fields never get here (parse_ui_body refuses them by name); forbid anyway.
    model_config = ConfigDict(strict=True, extra="forbid")

    id: str = Field(pattern=CHAT_ID_PATTERN)
    messages: list[_UIMessage] = Field(min_length=1)
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    messageId: str | None = Field(None, max_length=256)  # the SDK's name
    model: str | None = Field(None, min_length=1)
    agent: str | None = Field(None, min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    # Next to model and agent in useChat's ``body``, in OpenAI's function format.
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    # Chat-completions parameters a UI message stream has no place for (one text per
    # message, no logprobs): read only to be refused by name with a message saying why
    # (``parse_ui_body``), and left out of the schema.
    n: SkipJsonSchema[Any] = None
    logprobs: SkipJsonSchema[Any] = None
    top_logprobs: SkipJsonSchema[Any] = None

    def chat_messages(self) -> list[ChatMessage]:
        return [turn for message in self.messages for turn in message.to_chat()]

    def params(self) -> ChatParams:
        return ChatParams(
            temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p
        )

    def options(self) -> ChatOptions:
        return to_options(
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format,
        )

    def continued_message_id(self) -> str | None:
        """The assistant message this answer continues, when the chat ends with one
        (the follow-up turn ``useChat`` sends itself once every tool call has its
        result): the stream then names it, so its new step joins that message."""
        last = self.messages[-1]
        if last.role != "assistant" or self.trigger != "submit-message":
            return None  # a regenerated answer is a new message
        return last.id


def parse_ui_body(raw: bytes) -> UIChatBody:
    """Raises BadRequest (400) for malformed JSON, ValidationFailed (422) naming the field,
    UnsupportedParameter (400) for ``n``, ``logprobs``, ``top_logprobs`` or a field it
    does not take."""
    body = parse_json_body(raw, UIChatBody, known_only=True)
    for name in ("n", "logprobs", "top_logprobs"):
        if getattr(body, name) is not None:
            raise UnsupportedParameter(
                f"'{name}' is not supported by the UI message stream; "
                "use POST /api/v1/chat/completions",
                param=name,
            )
    return body
