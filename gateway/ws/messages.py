"""The wire protocol ``chat-gateway.v1`` as pydantic models: the edge of the endpoint.

Inbound frames are validated here, once per client message, and turned into
these models; nothing past :func:`parse_client_message` sees raw JSON. The
outbound models document what the server sends (they generate the JSON Schema
and the tests check :mod:`gateway.ws.wire` against them) but are *not* used to
encode frames: that is the per-token path, done with plain dicts and orjson.

Inbound models are strict (no ``"5"`` for ``5``) and forbid unknown fields, so a
typo such as ``max_token`` is reported instead of silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from gateway import client_json
from gateway.chat_input import MessageIn, ResponseFormatIn, ToolChoiceIn, ToolIn
from gateway.errors import (
    GatewayError,
    InvalidMessage,
    UnknownMessageType,
    UnsupportedParameter,
    ValidationFailed,
)
from gateway.validation_paths import error_param

PROTOCOL = "chat-gateway.v1"

_Id = Annotated[str, Field(min_length=1, max_length=128)]
_JsonScalar: TypeAlias = int | float | str | None


class _Inbound(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: _Id | None = Field(
        None, description="Client-chosen id, echoed in any error this message causes."
    )


class _Part(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --- client -> server ---------------------------------------------------------------


class WireParams(_Part):
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: list[str] | str | None = Field(None, description="A string or up to 4 strings.")

    @property
    def stop_tuple(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @model_validator(mode="after")
    def _stop_count(self) -> WireParams:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 sequences")
        return self


class ResponseCreate(_Inbound):
    """Start a response. ``request_id`` makes it idempotent (see the protocol doc)."""

    type: Literal["response.create"]
    request_id: _Id
    messages: list[MessageIn] = Field(
        min_length=1, description="OpenAI chat messages: text and image parts, tool calls, results."
    )
    model: _Id | None = None
    agent: _Id | None = None
    conversation_id: _Id | None = Field(
        None, description="At most one running response per conversation."
    )
    params: WireParams | None = None
    tools: list[ToolIn] | None = Field(None, description="Functions the model may call.")
    tool_choice: ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None


class ResponseCancel(_Inbound):
    """Stop a response (by either id); it ends with ``response.done`` status ``cancelled``."""

    type: Literal["response.cancel"]
    response_id: _Id | None = None
    request_id: _Id | None = None

    @model_validator(mode="after")
    def _one_id(self) -> ResponseCancel:
        if self.response_id is None and self.request_id is None:
            raise ValueError("response.cancel needs response_id or request_id")
        return self


class ResponseResume(_Inbound):
    """Re-attach a response started on an earlier socket; replays ``seq > last_seq``."""

    type: Literal["response.resume"]
    response_id: _Id
    epoch: int = Field(ge=0)
    last_seq: int = Field(ge=-1, description="The last seq received (-1: none, not even created).")


class SessionDefaults(_Part):
    model: _Id | None = None
    agent: _Id | None = None
    params: WireParams | None = None


class SessionUpdate(_Inbound):
    """Set defaults for later ``response.create`` on this socket (null clears a field)."""

    type: Literal["session.update"]
    session: SessionDefaults


class Ping(_Inbound):
    type: Literal["ping"]
    ts: _JsonScalar = Field(None, description="Echoed in the pong.")


ClientMessage: TypeAlias = Annotated[
    ResponseCreate | ResponseCancel | ResponseResume | SessionUpdate | Ping,
    Field(discriminator="type"),
]

_CLIENT_TYPES: dict[str, type[_Inbound]] = {
    "response.create": ResponseCreate,
    "response.cancel": ResponseCancel,
    "response.resume": ResponseResume,
    "session.update": SessionUpdate,
    "ping": Ping,
}


# --- server -> client ---------------------------------------------------------------


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionLimits(_Outbound):
    max_concurrent_responses: int
    messages_per_second: float = Field(
        description="Refill rate of the bucket that response.create, response.resume and "
        "session.update spend (response.cancel and ping never do)."
    )
    message_burst: int
    max_message_bytes: int
    flood_messages_per_second: float = Field(
        description="Ceiling for all messages together; going over it closes the socket "
        "1008 and cancels its running responses."
    )
    flood_message_burst: int


class SessionCreated(_Outbound):
    type: Literal["session.created"]
    session_id: str
    protocol: Literal["chat-gateway.v1"]
    heartbeat_interval_ms: int
    max_message_bytes: int
    resume_window_ms: int
    limits: SessionLimits


class ResponseCreated(_Outbound):
    type: Literal["response.created"]
    response_id: str
    request_id: str
    model: str
    provider: str
    epoch: int
    seq: Literal[0]


class OutputTextDelta(_Outbound):
    type: Literal["response.output_text.delta"]
    response_id: str
    seq: int = Field(description="Seq of the last delta merged into this frame: may skip.")
    delta: str


class FunctionCallItem(_Outbound):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: Literal[""] = Field(description="Always empty here: the pieces follow.")


class OutputItemAdded(_Outbound):
    type: Literal["response.output_item.added"]
    response_id: str
    seq: int
    output_index: int = Field(description="Tells the calls of one response apart: 0, 1, ...")
    item: FunctionCallItem


class FunctionCallArgumentsDelta(_Outbound):
    type: Literal["response.function_call_arguments.delta"]
    response_id: str
    seq: int = Field(description="Never merged: every piece is a frame of its own.")
    call_id: str
    output_index: int
    delta: str = Field(description="A piece of the call's JSON arguments; pieces concatenate.")


class FunctionCallArgumentsDone(_Outbound):
    type: Literal["response.function_call_arguments.done"]
    response_id: str
    seq: int
    output_index: int
    call_id: str
    name: str
    arguments: str = Field(description="The call's whole JSON arguments (every piece joined).")


class ReasoningDeltaFrame(_Outbound):
    type: Literal["response.reasoning.delta"]
    response_id: str
    seq: int
    delta: str = Field(description="A piece of the model's reasoning text.")


class UsageOut(_Outbound):
    """Token counts; ``null`` when unknown, never 0 for unknown. A response that ended
    early reports what the provider had told before the cut."""

    input_tokens: int | None = Field(
        description="Known from the first delta on for Anthropic (told up front), also "
        "when the response is cancelled or fails; null for OpenAI and Ollama until they "
        "finish."
    )
    output_tokens: int | None = Field(
        description="Told by every provider only at its finish: null for a response that "
        "ended early."
    )


class ResponseDone(_Outbound):
    type: Literal["response.done"]
    response_id: str
    request_id: str
    seq: int
    status: Literal["completed", "cancelled", "incomplete", "failed"]
    reason: str | None = None
    finish_reason: str | None
    usage: UsageOut
    error: ErrorBody | None = Field(None, description="Present when status is failed.")


class ErrorBody(_Outbound):
    type: str
    code: str
    message: str
    param: str | None = None
    request_id: str | None = Field(
        None,
        description="The request_id of the message this error refuses (or of the failed "
        "response), whenever that message carried one; null only when it had none or "
        "was not read (message_too_big, binary frames).",
    )
    response_id: str | None = Field(
        None,
        description="Likewise, the response_id the refused message named; for "
        "duplicate_request, that of the response its request_id names.",
    )
    epoch: int | None = Field(
        None,
        description="Only on duplicate_request: the epoch of that response, so that "
        "response.resume can name it.",
    )
    event_id: str | None = Field(None, description="The refused message's event_id.")
    retryable: bool
    retry_after_ms: int | None = Field(
        None, description="Present when the server knows how long to wait: always on rate_limited."
    )


class ErrorFrame(_Outbound):
    type: Literal["error"]
    error: ErrorBody


class ResumeResultFrame(_Outbound):
    type: Literal["resume.result"]
    response_id: str
    recovered: bool
    from_seq: int | None


class ResponseMovedFrame(_Outbound):
    """The response now streams to another socket, which resumed it or re-sent its
    request_id: this socket gets nothing more of it, not even its ``response.done``."""

    type: Literal["response.moved"]
    response_id: str
    request_id: str


class ServerDrainingFrame(_Outbound):
    type: Literal["server.draining"]
    deadline_ms: int = Field(description="Milliseconds until running responses are cut off.")


class SessionUpdated(_Outbound):
    type: Literal["session.updated"]
    session: SessionDefaults


class Pong(_Outbound):
    type: Literal["pong"]
    ts: _JsonScalar = None


ResponseDone.model_rebuild()

ServerMessage: TypeAlias = Annotated[
    SessionCreated
    | ResponseCreated
    | OutputTextDelta
    | OutputItemAdded
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | ReasoningDeltaFrame
    | ResponseDone
    | ErrorFrame
    | ResumeResultFrame
    | ResponseMovedFrame
    | ServerDrainingFrame
    | SessionUpdated
    | Pong,
    Field(discriminator="type"),
]

SERVER_MESSAGES: TypeAdapter[Any] = TypeAdapter(ServerMessage)
CLIENT_MESSAGES: TypeAdapter[Any] = TypeAdapter(ClientMessage)


# --- parsing ------------------------------------------------------------------------


class Rejected(Exception):
    """A client message that could not be parsed, with the ids it could still name."""

    def __init__(
        self,
        error: GatewayError,
        *,
        event_id: str | None = None,
        request_id: str | None = None,
        response_id: str | None = None,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.event_id = event_id
        self.request_id = request_id
        self.response_id = response_id


def parse_client_message(
    text: str,
) -> ResponseCreate | ResponseCancel | ResponseResume | SessionUpdate | Ping:
    """Validate one text frame; raises :class:`Rejected` carrying a typed gateway error."""
    try:
        raw = client_json.loads(text, what="frame", error=InvalidMessage)
    except InvalidMessage as err:
        raise Rejected(err) from None
    if not isinstance(raw, dict):
        raise Rejected(InvalidMessage("frame must be a JSON object"))
    ids = {key: _str_or_none(raw.get(key)) for key in ("event_id", "request_id", "response_id")}
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise Rejected(InvalidMessage("frame has no string 'type'", param="type"), **ids)
    model = _CLIENT_TYPES.get(kind)
    if model is None:
        raise Rejected(
            UnknownMessageType(f"unknown message type '{kind[:64]}'", param="type"), **ids
        )
    if kind == "response.create":
        for name in _HTTP_ONLY:
            if name in raw:
                # Known OpenAI parameters, not typos: say so rather than "extra field".
                error = UnsupportedParameter(
                    f"'{name}' is not supported over the WebSocket (the deltas carry one "
                    "choice, without logprobs); use POST /api/v1/chat/completions",
                    param=name,
                )
                raise Rejected(error, **ids)
    try:
        return model.model_validate(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        raise Rejected(_validation_error(model, exc), **ids) from None


# Chat-completions parameters the socket's frames have no place for (HTTP SSE has).
_HTTP_ONLY = ("n", "logprobs", "top_logprobs")


def _validation_error(model: type[BaseModel], exc: ValidationError) -> ValidationFailed:
    # The path as the client wrote it (messages[0].content), not the validator's
    # (messages.0.user.content.str): the same as the HTTP API's.
    first = exc.errors(include_url=False, include_input=False)[0]
    where = error_param(model, first)
    message = f"{where}: {first['msg']}" if where else first["msg"]
    return ValidationFailed(message, param=where or None)


def _str_or_none(value: object) -> str | None:
    # Only echo ids that are plausible ids: never reflect arbitrary client data.
    if isinstance(value, str) and 0 < len(value) <= 128:
        return value
    return None
