"""What every fake upstream shares: scenarios, request records, disconnect tracking."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

Outcome = Literal["pending", "completed", "disconnected", "reset", "stalled", "error"]

_ids = itertools.count(1)


@dataclass
class FakeToolCall:
    """A tool call the fake model makes: ``arguments`` are the JSON text's streamed pieces."""

    name: str
    arguments: list[str]
    id: str | None = None  # the provider's call id (made up from the index when None)

    @property
    def whole_arguments(self) -> str:
        return "".join(self.arguments)


@dataclass
class Scenario:
    """How the fake answers one request. Fields combine; unused ones are ignored.

    - ``tokens``: the text pieces streamed (one chunk each); for non-streamed calls joined.
    - ``delay_s``: pause before each chunk (a "paced" upstream); 0 = as fast as possible.
      The OpenAI fake also paces each tool-call argument piece.
    - ``status``: answer with this HTTP error status and the provider's error body instead.
    - ``retry_after``: value of the ``retry-after`` header on an error status.
    - ``stall_after``: after N chunks stop sending but keep the connection open.
    - ``reset_after``: after N chunks abort the connection (no terminator).
    - ``error_after``: after N chunks send the provider's mid-stream error event.
    - ``error_type``: provider-specific error type for ``error_after`` (e.g. overloaded_error).
    - ``finish_reason``: provider-native stop reason sent at the end (None = provider default).
    - ``usage``: (input_tokens, output_tokens) reported; None = computed from tokens.
    - ``retry_after_ms``: value of the ``retry-after-ms`` header on an error status.
    - ``ping``: send the provider's keep-alive (SSE ``: ping`` comment / ``ping`` event)
      before every chunk.
    - ``thinking``: reasoning pieces streamed before the answer (Anthropic thinking block).
    - ``refusal``: OpenAI only: refusal pieces streamed after the text (``delta.refusal``;
      the whole answer's ``message.refusal``), as the API sends a structured-output
      refusal (with ``tokens=[]``: no content at all).
    - ``tool_calls``: calls made after the text, each in the provider's own wire format
      (finish reason then defaults to the provider's "tool calls" reason).
    - ``garbage_after``: after N chunks send a malformed, truncated chunk (half an SSE
      event / half an NDJSON line) and end the body there.
    - ``end_after``: after N chunks end the body cleanly, without the provider's
      terminator (no ``[DONE]`` / ``message_stop`` / ``done: true``).
    """

    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "!"])
    delay_s: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    stall_after: int | None = None
    reset_after: int | None = None
    error_after: int | None = None
    error_type: str | None = None
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None
    retry_after_ms: str | None = None
    ping: bool = False
    thinking: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    garbage_after: int | None = None
    end_after: int | None = None

    def usage_counts(self, prompt_tokens: int = 7) -> tuple[int, int]:
        return self.usage if self.usage is not None else (prompt_tokens, len(self.tokens))


@dataclass
class RequestRecord:
    """One request the fake received, and how its (streamed) answer ended."""

    id: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    stream: bool
    outcome: Outcome = "pending"
    chunks_sent: int = 0
    ended: anyio.Event = field(default_factory=anyio.Event)
    # ``time.monotonic()`` is CLOCK_MONOTONIC: benchmarks compare these with
    # timestamps taken in other processes on the same machine.
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None

    @property
    def disconnected(self) -> bool:
        return self.outcome == "disconnected"

    def finish(self, outcome: Outcome) -> None:
        if self.outcome == "pending":
            self.outcome = outcome
        if self.ended_at is None:
            self.ended_at = time.monotonic()
        self.ended.set()


class FakeUpstream:
    """Controller shared by one fake app and the test that drives it."""

    def __init__(self, default: Scenario | None = None, *, api_key: str | None = None) -> None:
        self.default = default or Scenario()
        # When set, requests presenting another key get the provider's 401.
        self.api_key = api_key
        self._queued: deque[Scenario] = deque()
        self.requests: list[RequestRecord] = []
        self._arrived = anyio.Event()

    # --- driving ---
    def queue(self, *scenarios: Scenario) -> None:
        """The next requests get these scenarios, in order; later ones get the default."""
        self._queued.extend(scenarios)

    def next_scenario(self) -> Scenario:
        return self._queued.popleft() if self._queued else self.default

    # --- observing ---
    def record(
        self, method: str, path: str, headers: dict[str, str], body: Any, stream: bool
    ) -> RequestRecord:
        rec = RequestRecord(next(_ids), method, path, headers, body, stream)
        self.requests.append(rec)
        self._arrived.set()
        self._arrived = anyio.Event()
        return rec

    async def wait_for_requests(self, count: int) -> list[RequestRecord]:
        while len(self.requests) < count:
            await self._arrived.wait()
        return self.requests[:count]

    @property
    def active_streams(self) -> int:
        return sum(1 for r in self.requests if r.stream and r.outcome == "pending")

    @property
    def last(self) -> RequestRecord:
        return self.requests[-1]


class TrackedStream(StreamingResponse):
    """A streaming response that records on its :class:`RequestRecord` how it ended.

    Starlette cancels the body when the client sends ``http.disconnect`` (ASGI
    spec < 2.4, which uvicorn uses), so ``__call__`` returns promptly after a
    hang-up; anything short of the body's own normal end counts as a disconnect.
    """

    def __init__(
        self,
        record: RequestRecord,
        body: Callable[[RequestRecord], AsyncIterator[bytes]],
        media_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.record = record
        self._completed = False
        super().__init__(self._run(body), media_type=media_type, headers=headers)

    async def _run(
        self, body: Callable[[RequestRecord], AsyncIterator[bytes]]
    ) -> AsyncIterator[bytes]:
        async for chunk in body(self.record):
            yield chunk
        self._completed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.record.finish("completed" if self._completed else "disconnected")


def _marker(body: Any) -> str | None:
    """The text of the last user message: how a benchmark client names its request."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def describe(record: RequestRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "path": record.path,
        "stream": record.stream,
        "marker": _marker(record.body),
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "outcome": record.outcome,
        "chunks_sent": record.chunks_sent,
    }


class ConnectionReset(Exception):
    """Raised inside a stream body to make uvicorn drop the connection mid-response."""
