"""The provider contract: one small protocol and one normalised event stream.

Every adapter (OpenAI, Anthropic, Ollama, demo) turns its upstream's wire format
into the same three plain event types. They are slotted dataclasses rather than
pydantic models because one is created per token on the hot path.

A stream is opened as an async context manager so that leaving the ``async with``
block -- normally, by an exception, or by cancellation -- always closes the
upstream HTTP response. That is what makes "Stop" stop the provider's spend.

    async with provider.stream(request) as events:
        async for event in events:
            ...

The iterator yields zero or more content events -- :class:`TextDelta`,
:class:`ReasoningDelta`, :class:`ToolCallStart` followed by that call's
:class:`ToolCallDelta` pieces (calls told apart by ``index``; pieces of different
calls may interleave) -- then exactly one :class:`Finish` (which carries the
usage when the upstream reported it), then stops. Before the first content event
there may be one :class:`UsageSoFar` (the usage the upstream told up front, so an
answer cut short still reports it). With ``n`` > 1 (OpenAI) every event names its
``choice`` and each choice ends with a ``Finish`` of its own, the stream's last
one ending it. :data:`StreamEvent` is their closed union: consumers ``match`` it
exhaustively (``assert_never``). Upstream failures are raised as
:class:`gateway.errors.UpstreamError`.

Leaving the block closes the response in an orderly way, but that takes a few
event-loop turns (the consumer task must resume, then each async close runs).
Where a stop must reach the upstream at once, the iterator may also be
:class:`Abortable`: its ``abort()`` shuts the upstream socket down synchronously,
and the normal exit still runs afterwards as cleanup. Callers use
:func:`abort_stream`, which does nothing for iterators without it (the demo
provider has no socket to abort).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

FinishReason: TypeAlias = Literal[
    "stop", "length", "content_filter", "tool_calls", "error", "cancelled"
]
Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


# --- the conversation ---------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TextPart:
    text: str


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image, by ``url``: a ``data:<media type>;base64,...`` URL or an ``https:`` URL."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None

    @property
    def inline(self) -> tuple[str, str] | None:
        """``(media_type, base64 data)`` of a ``data:`` URL; ``None`` for a remote URL."""
        if not self.url.startswith("data:"):
            return None
        head, sep, data = self.url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if not sep or encoding != "base64":
            return None
        return media_type or "application/octet-stream", data


ContentPart: TypeAlias = TextPart | ImagePart


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A function call the assistant made; ``arguments`` is its JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True, frozen=True)
class ChatMessage:
    """One turn. ``content`` is plain text or a sequence of parts (text and images).

    An assistant turn may carry ``tool_calls`` (its content may then be empty); a
    ``tool`` turn answers the call ``tool_call_id`` with its content.
    """

    role: Role
    content: str | tuple[ContentPart, ...]
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    # On a ``tool`` turn the tool's name, when the client gave it; on any other turn the
    # participant's name (OpenAI's ``name``), which only some providers can take.
    name: str | None = None

    @property
    def text(self) -> str:
        """The text of the content, image parts left out."""
        content = self.content
        if isinstance(content, str):
            return content
        return "".join(part.text for part in content if isinstance(part, TextPart))

    @property
    def parts(self) -> tuple[ContentPart, ...]:
        content = self.content
        if isinstance(content, str):
            return (TextPart(content),) if content else ()
        return content


@dataclass(slots=True, frozen=True)
class ChatParams:
    """Sampling parameters (the ones an agent preset may set too)."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()


# --- tools, output format and the other request options -------------------------


@dataclass(slots=True, frozen=True)
class Tool:
    """A function the model may call; ``parameters`` is its JSON Schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None


@dataclass(slots=True, frozen=True)
class NamedTool:
    """``tool_choice`` forcing one named function."""

    name: str


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedTool


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    """The output format: ``json_object`` or ``json_schema`` (``text`` is the default: None)."""

    type: Literal["json_object", "json_schema"]
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True, frozen=True)
class ChatOptions:
    """Everything a request asks beyond messages and sampling.

    ``None`` / empty means "not asked for". Which of these a provider honours is its
    :meth:`Provider.check`'s business: a set option it cannot honour is refused with
    :class:`gateway.errors.UnsupportedParameter`, never dropped.
    """

    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = None
    reasoning_effort: str | None = None
    # OpenAI-only chat-completions parameters (:data:`PASSTHROUGH_PARAMS`), as the
    # client sent them: the OpenAI adapter puts them in the body unchanged, every
    # other adapter refuses them by name.
    passthrough: tuple[tuple[str, Any], ...] = ()

    def given(self) -> list[str]:
        """The wire names of the options that ask for something: set, and not to their
        OpenAI default (``_ASKS_FOR_NOTHING``). Many clients send the defaults
        explicitly; a provider without the parameter honours those by doing nothing."""
        names: list[str] = []
        if self.tools:
            names.append("tools")
        for name in _OPTION_NAMES:
            value = getattr(self, name)
            if value is None or _asks_for_nothing(name, value):
                continue
            names.append(name)
        names.extend(name for name, value in self.passthrough if not _asks_for_nothing(name, value))
        return names


# OpenAI's defaults: a request that sets one of these to it asks for nothing.
# (``n: 1`` and the penalties' 0 are what many clients send with every request.)
_ASKS_FOR_NOTHING: dict[str, object] = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": 0,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "parallel_tool_calls": True,
    "store": False,
}


def _asks_for_nothing(name: str, value: object) -> bool:
    # The edge models are strict, so each value has its field's type: == is exact.
    return name in _ASKS_FOR_NOTHING and value == _ASKS_FOR_NOTHING[name]


_OPTION_NAMES = (
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
    "user",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "reasoning_effort",
)

# Chat-completions parameters only OpenAI has that act on the request alone (nothing
# new comes back that the gateway would have to relay): carried to OpenAI as they are.
PASSTHROUGH_PARAMS = (
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "store",
    "metadata",
    "verbosity",
    "prediction",
    "logit_bias",
)


@dataclass(slots=True, frozen=True)
class ChatRequest:
    """A request as one provider sees it: ``model`` is the provider's own model name."""

    model: str
    messages: tuple[ChatMessage, ...]
    params: ChatParams = field(default_factory=ChatParams)
    options: ChatOptions = field(default_factory=ChatOptions)


@dataclass(slots=True, frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None


# --- the stream ------------------------------------------------------------------
#
# The per-token events (``TextDelta``, ``ReasoningDelta``, ``ToolCallDelta``) are
# slotted but not frozen: a frozen dataclass's ``__init__`` pays a call
# (``object.__setattr__``) per field, a plain one a slot store, and one is made per
# token. Nothing changes an event once made.
#
# ``choice`` says which alternative of an ``n`` > 1 answer an event belongs to
# (OpenAI's ``choices[i].index``); 0 for everything else.


@dataclass(slots=True)
class TextDelta:
    """A piece of the answer's text.

    ``logprobs`` is the provider's own per-token object for this piece (OpenAI's
    ``choices[i].logprobs``: ``{"content": [...], "refusal": ...}``), passed through
    as it is; ``None`` unless the request asked for ``logprobs``.
    """

    text: str
    choice: int = 0
    logprobs: Any = None


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning ("thinking") text, when the provider streams it."""

    text: str
    choice: int = 0


@dataclass(slots=True)
class RefusalDelta:
    """A piece of the model's refusal to answer (OpenAI's ``delta.refusal``: with
    structured outputs, the text it sends instead of the requested JSON)."""

    text: str
    choice: int = 0


@dataclass(slots=True, frozen=True)
class ToolCallStart:
    """A tool call begins. ``index`` tells calls of one answer apart (0, 1, ... in order)."""

    index: int
    call_id: str
    name: str
    choice: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of the JSON arguments of the call ``index`` (pieces concatenate)."""

    index: int
    arguments: str
    choice: int = 0


@dataclass(slots=True, frozen=True)
class UsageSoFar:
    """Token counts the upstream reported before its finish, for an answer cut short.

    At most one per stream, and before its first output event (the relay reads it
    there only, keeping the per-token path free of checks): Anthropic's
    ``message_start`` tells the input tokens up front. Counts not known yet are
    ``None`` (never 0). The :class:`Finish`'s usage supersedes it.
    """

    usage: Usage


@dataclass(slots=True, frozen=True)
class Finish:
    """The end of the choice ``choice``; the last ``Finish`` ends the stream.

    A request for one choice gets exactly one. With ``n`` > 1 each choice gets its
    own, where that choice ended; the stream's last carries the usage.
    """

    reason: FinishReason
    usage: Usage | None = None
    choice: int = 0


StreamEvent: TypeAlias = (
    TextDelta | ReasoningDelta | RefusalDelta | ToolCallStart | ToolCallDelta | UsageSoFar | Finish
)


@dataclass(slots=True, frozen=True)
class Choice:
    """One alternative of a whole answer (``n`` > 1 asks for several)."""

    text: str | None
    finish_reason: FinishReason
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: Any = None  # the provider's own logprobs object, passed through as it is
    reasoning: str | None = None
    refusal: str | None = None


@dataclass(slots=True, frozen=True)
class Completion:
    """A whole (non-streamed) answer: the first choice's fields, then any further choices."""

    text: str
    finish_reason: FinishReason
    usage: Usage | None
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    more_choices: tuple[Choice, ...] = ()
    logprobs: Any = None
    reasoning: str | None = None
    refusal: str | None = None

    @property
    def choices(self) -> tuple[Choice, ...]:
        first = Choice(
            self.text if self.text or not (self.tool_calls or self.refusal) else None,
            self.finish_reason,
            self.tool_calls,
            self.logprobs,
            self.reasoning,
            self.refusal,
        )
        return (first, *self.more_choices)


@dataclass(slots=True, frozen=True)
class ModelInfo:
    id: str  # the provider's own name, without the ``provider/`` prefix
    owned_by: str
    description: str | None = None


@runtime_checkable
class Abortable(Protocol):
    """An event iterator that can cut its upstream connection off synchronously."""

    def abort(self) -> None:
        """Shut the upstream socket down now (``shutdown(SHUT_RDWR)``): the upstream
        sees the connection close in this very event-loop iteration.

        Synchronous, idempotent, never raises; a no-op once the response is closed
        (its connection may already serve another request). Reads after it fail
        or end, and the stream's ``async with`` exit must still run to release
        the response.
        """
        ...


class ChecksRequests(Protocol):
    """A provider that says up front which requests it cannot honour (all real ones do)."""

    def check(self, request: ChatRequest, *, streamed: bool) -> None:
        """Raise :class:`gateway.errors.UnsupportedParameter` naming the first parameter of
        ``request`` this provider cannot honour; return if it can honour them all. Pure:
        no I/O, called for each target before it is tried."""
        ...


def check_request(provider: object, request: ChatRequest, *, streamed: bool) -> None:
    """``provider.check(...)`` for a provider that has it (test doubles may not).

    Looked up by attribute, not ``isinstance`` on the runtime-checkable protocol,
    which walks the protocol's members on every call (every routed request).
    """
    check = getattr(provider, "check", None)
    if check is not None:
        check(request, streamed=streamed)


def abort_stream(events: object) -> None:
    """``events.abort()`` if the iterator is :class:`Abortable`, else nothing."""
    abort = getattr(events, "abort", None)
    if abort is not None:
        abort()


class Provider(Protocol):
    """What the router needs from an upstream. One instance per provider, shared."""

    @property
    def name(self) -> str:
        """The routing prefix: ``openai``, ``anthropic``, ``ollama`` or ``demo``."""
        ...

    def stream(
        self, request: ChatRequest
    ) -> AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        """Open a streaming chat. Entering sends the request; exiting closes it."""
        ...

    async def complete(self, request: ChatRequest) -> Completion:
        """One non-streamed answer."""
        ...

    async def list_models(self) -> list[ModelInfo]:
        """The models the upstream offers (may be a configured static list)."""
        ...

    async def probe(self) -> None:
        """Cheap reachability check; raises :class:`UpstreamError` when unhealthy."""
        ...

    async def aclose(self) -> None:
        """Release the connection pool. Called once at shutdown."""
        ...
