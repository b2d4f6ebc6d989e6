"""The body ``useChat``'s ``DefaultChatTransport`` POSTs, validated once at the edge.

The transport sends ``{...body, id, messages, trigger, messageId}``: ``body`` is
whatever the app passes (here ``model``, ``agent`` and sampling parameters), the
rest is the chat's state in the AI SDK's UI message shape, each message a list
of ``parts``. Only what reaches the model is kept: text parts become the
message's content; parts that exist for the UI alone (``step-start``,
``reasoning`` the model already produced, sources, ``data-*``) are dropped.
Parts the gateway cannot pass on faithfully yet (files, tool calls and their
results) are refused with a 422 naming the part, never silently dropped: a
conversation with a tool result missing would mean something else to the model.
Unknown top-level fields are ignored, as the SDK lets apps add their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.http._chat_request import parse_json_body
from gateway.providers.base import ChatMessage, ChatParams

# Chat ids are path segments of the resume and stop routes and keys of the session
# manager: bounded, and without "/" so that every id has a stream URL.
CHAT_ID_PATTERN = r"^[^/]{1,128}$"

# Parts that only the UI needs: the model never sees them.
_UI_ONLY_PARTS = frozenset({"step-start", "reasoning", "source-url", "source-document"})


class _UIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(max_length=256)
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]]

    @field_validator("parts")
    @classmethod
    def _known_parts(cls, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, part in enumerate(parts):
            kind = part.get("type")
            if not isinstance(kind, str):
                raise ValueError(f"part {index} has no string 'type'")
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise ValueError(f"text part {index} needs a string 'text'")
            elif kind in _UI_ONLY_PARTS or kind.startswith("data-"):
                continue
            else:
                # file, tool-*, dynamic-tool and anything newer.
                raise ValueError(f"part {index} of type '{kind[:64]}' is not supported yet")
        return parts

    def content(self) -> str:
        return "".join(p["text"] for p in self.parts if p.get("type") == "text")


class UIChatBody(BaseModel):
    """``POST /api/v1/ui/chat``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=CHAT_ID_PATTERN)
    messages: list[_UIMessage] = Field(min_length=1)
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    messageId: str | None = Field(None, max_length=256)  # the SDK's name
    model: str | None = Field(None, min_length=1)
    agent: str | None = Field(None, min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)

    def chat_messages(self) -> list[ChatMessage]:
        # A message left with no text (only UI parts, e.g. an empty assistant turn
        # the user stopped at once) would be an empty turn to the provider.
        out = []
        for message in self.messages:
            content = message.content()
            if content or message.role == "user":
                out.append(ChatMessage(message.role, content))
        return out

    def params(self) -> ChatParams:
        return ChatParams(
            temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p
        )


def parse_ui_body(raw: bytes) -> UIChatBody:
    """Raises BadRequest (400) for malformed JSON, ValidationFailed (422) naming the field."""
    return parse_json_body(raw, UIChatBody)
