"""The OpenAI chat completion request, validated once at the edge.

Unknown fields are ignored, as OpenAI's own API does for fields it does not use
here (``n``, ``tools``, ``user``...). ``agent`` is the gateway's extension.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway import client_json
from gateway.errors import ValidationFailed
from gateway.providers.base import ChatMessage, ChatParams

_MAX_REPORTED_ERRORS = 3

_Body = TypeVar("_Body", bound=BaseModel)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _join_text_parts(cls, value: Any) -> Any:
        """``[{"type": "text", "text": ...}, ...]`` -> one string (only text parts exist here)."""
        if not isinstance(value, list):
            return value
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ValueError("only content parts of type 'text' are supported")
            text = part.get("text")
            if not isinstance(text, str):
                raise ValueError("a text content part needs a string 'text'")
            texts.append(text)
        return "".join(texts)

    def to_chat(self) -> ChatMessage:
        # OpenAI's newer "developer" role is the system role for every other provider.
        role: Literal["system", "user", "assistant"] = (
            "system" if self.role == "developer" else self.role
        )
        return ChatMessage(role, self.content)


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, min_length=1)
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    agent: str | None = Field(None, min_length=1)

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def chat_messages(self) -> list[ChatMessage]:
        return [m.to_chat() for m in self.messages]

    def params(self) -> ChatParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        max_tokens = self.max_completion_tokens
        if max_tokens is None:
            max_tokens = self.max_tokens
        return ChatParams(
            temperature=self.temperature, max_tokens=max_tokens, top_p=self.top_p, stop=stop
        )


def parse_body(raw: bytes) -> ChatCompletionBody:
    """Raises BadRequest (400) for malformed JSON, ValidationFailed (422) naming the field."""
    return parse_json_body(raw, ChatCompletionBody)


def parse_json_body(raw: bytes, model: type[_Body]) -> _Body:
    """A JSON request body as ``model``: the HTTP API's one way of reporting bad bodies."""
    data = client_json.loads(raw, what="the request body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_failed(exc) from None


def _validation_failed(exc: ValidationError) -> ValidationFailed:
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    params = [_param(err["loc"]) for err in errors]
    described = [
        f"{param}: {err['msg']}" if param else err["msg"]
        for param, err in zip(params, errors, strict=True)
    ]
    message = "; ".join(described[:_MAX_REPORTED_ERRORS])
    if len(described) > _MAX_REPORTED_ERRORS:
        message += f" (and {len(described) - _MAX_REPORTED_ERRORS} more)"
    return ValidationFailed(message, param=params[0] or None)


def _param(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "role")`` -> ``messages[0].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
