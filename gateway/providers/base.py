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

The iterator yields zero or more :class:`TextDelta`, then exactly one
:class:`Finish` (which carries the usage when the upstream reported it), then
stops. Upstream failures are raised as :class:`gateway.errors.UpstreamError`.

Leaving the block closes the response in an orderly way, but that takes a few
event-loop turns (the consumer task must resume, then each async close runs).
Where a stop must reach the upstream at once, the iterator may also be
:class:`Abortable`: its ``abort()`` shuts the upstream socket down synchronously,
and the normal exit still runs afterwards as cleanup. Callers use
:func:`abort_stream`, which does nothing for iterators without it (the demo
provider has no socket to abort).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias, runtime_checkable

FinishReason: TypeAlias = Literal[
    "stop", "length", "content_filter", "tool_calls", "error", "cancelled"
]


@dataclass(slots=True, frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(slots=True, frozen=True)
class ChatParams:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class ChatRequest:
    """A request as one provider sees it: ``model`` is the provider's own model name."""

    model: str
    messages: tuple[ChatMessage, ...]
    params: ChatParams = field(default_factory=ChatParams)


@dataclass(slots=True, frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class Finish:
    reason: FinishReason
    usage: Usage | None = None


StreamEvent: TypeAlias = TextDelta | Finish


@dataclass(slots=True, frozen=True)
class Completion:
    """A whole (non-streamed) answer."""

    text: str
    finish_reason: FinishReason
    usage: Usage | None
    model: str


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
