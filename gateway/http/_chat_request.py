"""The OpenAI chat completion request, validated once at the edge.

Messages, tools, tool choice and output format are the shared models of
:mod:`gateway.chat_input` (the WebSocket takes the same). Nothing a request asks
for is dropped: every top-level field is either modelled and carried to the
provider -- which refuses what it cannot honour (``unsupported_parameter``) -- or
refused here, naming it, with ``unsupported_parameter``: the few OpenAI
parameters whose answers the gateway cannot relay (:data:`_NOT_CARRIED`), and any
field it does not know at all. The OpenAI-only parameters that act on the request
alone (:data:`~gateway.providers.base.PASSTHROUGH_PARAMS`) are carried as they are
in :attr:`ChatOptions.passthrough`. ``agent`` is the gateway's extension.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway import client_json
from gateway.chat_input import (
    MessageIn,
    ResponseFormatIn,
    TextContent,
    ToolChoiceIn,
    ToolIn,
    to_messages,
    to_options,
)
from gateway.errors import UnsupportedParameter, ValidationFailed
from gateway.providers.base import PASSTHROUGH_PARAMS, ChatMessage, ChatOptions, ChatParams
from gateway.validation_paths import error_param

# OpenAI parameters whose answers come back in a shape no encoder of the gateway
# relays (audio, legacy function_call deltas, url citations, moderation results):
# refused when set, so a client never gets an answer with parts missing. Besides
# null, the values listed ask for nothing (the defaults) and are accepted.
_NOT_CARRIED: dict[str, tuple[object, ...]] = {
    "functions": ([],),
    "function_call": ("none", "auto"),
    "audio": (),
    "modalities": (["text"],),
    "web_search_options": (),
    "moderation": (),
}

_MAX_REPORTED_ERRORS = 3

_Body = TypeVar("_Body", bound=BaseModel)


class _PromptCacheOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    mode: Literal["implicit", "explicit"] | None = None
    ttl: Literal["30m"] | None = None


class _Prediction(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    type: Literal["content"]
    content: str | list[TextContent]


class _StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    include_usage: bool = False
    # OpenAI pads its own stream against length side channels; the gateway's stream is
    # its own, so only "no padding" can be honoured (refused in parse_body otherwise).
    include_obfuscation: bool | None = None


class ChatCompletionBody(BaseModel):
    # Unknown fields never get here (parse_body refuses them by name); forbid anyway.
    model_config = ConfigDict(strict=True, extra="forbid")

    model: str | None = Field(None, min_length=1)
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    agent: str | None = Field(None, min_length=1)
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    seed: int | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    n: int | None = Field(None, ge=1, le=128)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    # PASSTHROUGH_PARAMS: OpenAI's own, carried to it as they are (others refuse them).
    safety_identifier: str | None = Field(None, min_length=1, max_length=64)
    prompt_cache_key: str | None = Field(None, min_length=1)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: _PromptCacheOptions | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    store: bool | None = None
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(None, max_length=16)
    verbosity: Literal["low", "medium", "high"] | None = None
    prediction: _Prediction | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None

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
        return to_messages(self.messages)

    def options(self) -> ChatOptions:
        return to_options(
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format,
            seed=self.seed,
            user=self.user,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            n=self.n,
            reasoning_effort=self.reasoning_effort,
            passthrough=self._passthrough(),
        )

    def _passthrough(self) -> tuple[tuple[str, Any], ...]:
        # Most requests carry none of them: no serialisation pass for nothing.
        given = {name for name in PASSTHROUGH_PARAMS if getattr(self, name) is not None}
        if not given:
            return ()
        dumped = self.model_dump(mode="json", include=given, exclude_none=True)
        return tuple(dumped.items())

    def params(self) -> ChatParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        max_tokens = self.max_completion_tokens
        if max_tokens is None:
            max_tokens = self.max_tokens
        return ChatParams(
            temperature=self.temperature, max_tokens=max_tokens, top_p=self.top_p, stop=stop
        )


def parse_body(raw: bytes) -> ChatCompletionBody:
    """Raises BadRequest (400) for malformed JSON, ValidationFailed (422) naming the field,
    UnsupportedParameter (400) for an OpenAI parameter the gateway cannot carry."""
    data = client_json.loads(raw, what="the request body")
    if isinstance(data, dict):
        for name, value in data.items():
            if name in _NOT_CARRIED:
                if value is not None and value not in _NOT_CARRIED[name]:
                    raise UnsupportedParameter(
                        f"'{name}' is not supported by this gateway", param=name
                    )
            elif name not in ChatCompletionBody.model_fields:
                _refuse_unknown(name)
        data = {name: value for name, value in data.items() if name not in _NOT_CARRIED}
        options = data.get("stream_options")
        if isinstance(options, dict) and options.get("include_obfuscation"):
            raise UnsupportedParameter(
                "'stream_options.include_obfuscation' is not supported: the gateway's "
                "stream is its own",
                param="stream_options.include_obfuscation",
            )
    return _validate(data, ChatCompletionBody)


def parse_json_body(raw: bytes, model: type[_Body], *, known_only: bool = False) -> _Body:
    """A JSON request body as ``model``: the HTTP API's one way of reporting bad bodies.
    ``known_only``: a top-level field ``model`` does not declare is an
    UnsupportedParameter (400) naming it, never ignored."""
    data = client_json.loads(raw, what="the request body")
    if known_only and isinstance(data, dict):
        for name in data:
            if name not in model.model_fields:
                _refuse_unknown(name)
    return _validate(data, model)


def _refuse_unknown(name: object) -> NoReturn:
    shown = str(name)[:64]
    raise UnsupportedParameter(f"'{shown}' is not a parameter this gateway supports", param=shown)


def _validate(data: object, model: type[_Body]) -> _Body:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_failed(model, exc) from None


def _validation_failed(model: type[BaseModel], exc: ValidationError) -> ValidationFailed:
    errors = exc.errors(include_input=False, include_url=False)
    params = [error_param(model, err) for err in errors]
    described = [
        f"{param}: {err['msg']}" if param else err["msg"]
        for param, err in zip(params, errors, strict=True)
    ]
    message = "; ".join(described[:_MAX_REPORTED_ERRORS])
    if len(described) > _MAX_REPORTED_ERRORS:
        message += f" (and {len(described) - _MAX_REPORTED_ERRORS} more)"
    return ValidationFailed(message, param=params[0] or None)
