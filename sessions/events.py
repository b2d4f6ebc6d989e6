"""What a response emits, in order: one :class:`Created`, output events, one :class:`Done`.

Output events are text :class:`Delta` s, :class:`ReasoningDelta` s and tool calls:
a :class:`ToolCallAdded`, that call's :class:`ToolArgumentsDelta` pieces, and a
:class:`ToolCallDone` with the whole arguments (calls told apart by ``index``).

Plain values, no JSON: the gateway turns them into wire frames. ``seq`` counts per
response from 0 (the ``Created``), +1 per event. ``nbytes`` is the approximate
memory cost used by the replay buffer's byte bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# Fixed per-event cost on top of the text, so that a flood of empty deltas is bounded too.
EVENT_OVERHEAD_BYTES: Final = 64

# The most text one delta event carries (text, reasoning or tool-call arguments). A
# response splits a longer upstream piece into several events, each with its own seq
# (see ``Response.emit_delta``), and the gateway's outbox never merges past it: even
# at 6 bytes a character (JSON escapes) a frame stays under 400 KB, far below what
# clients accept in one message (1 MiB by default in the ``websockets`` library).
MAX_DELTA_CHARS: Final = 64 * 1024


class Status(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


class Reason(StrEnum):
    """Why a response ended other than normally (``Done.reason``).

    ``Done.reason`` is a plain ``str``: a producer may report reasons of its own
    through :class:`FinishInfo`.
    """

    CLIENT_CANCELLED = "client_cancelled"
    CLIENT_DISCONNECTED = "client_disconnected"
    POLICY_VIOLATION = "policy_violation"
    SERVER_SHUTDOWN = "server_shutdown"
    MAX_TOKENS = "max_tokens"
    UPSTREAM_ERROR = "upstream_error"
    RESUME_EXPIRED = "resume_expired"
    BUFFER_OVERFLOW = "buffer_overflow"
    OWNER_LOST = "owner_lost"
    """The instance running it died (its lease expired) before the ``Done``."""


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """Caller-supplied facts echoed in ``response.created`` (opaque to this package)."""

    model: str
    provider: str
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    response_id: str
    request_id: str
    epoch: int
    meta: ResponseMeta
    seq: int = 0

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class Delta:
    response_id: str
    seq: int
    text: str

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES + len(self.text)


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning text."""

    response_id: str
    seq: int
    text: str

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES + len(self.text)


@dataclass(frozen=True, slots=True)
class ToolCallAdded:
    """The model began the tool call ``index`` (0, 1, ... in the answer's order)."""

    response_id: str
    seq: int
    index: int
    call_id: str
    name: str

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES + len(self.call_id) + len(self.name)


@dataclass(frozen=True, slots=True)
class ToolArgumentsDelta:
    """A piece of the JSON arguments of the call ``index`` (pieces concatenate).

    ``call_id`` repeats the call's id (the wire frame names it on every piece).
    """

    response_id: str
    seq: int
    index: int
    delta: str
    call_id: str = ""

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES + len(self.delta) + len(self.call_id)


@dataclass(frozen=True, slots=True)
class ToolCallDone:
    """The call ``index`` is complete: ``arguments`` is every piece joined."""

    response_id: str
    seq: int
    index: int
    call_id: str
    name: str
    arguments: str

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES + len(self.call_id) + len(self.name) + len(self.arguments)


@dataclass(frozen=True, slots=True)
class Done:
    """The last event of a response, emitted exactly once whatever happened.

    ``error`` is the exception ``produce`` raised when ``status`` is ``failed``
    (the gateway maps it to its wire code and message); otherwise ``None``.
    Token counts are ``None`` when unknown (e.g. cancelled before upstream said).
    """

    response_id: str
    request_id: str
    seq: int
    status: Status
    reason: str | None = None
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: Exception | None = None

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class ResumeResult:
    """Answer to ``response.resume``; pushed to the sink *before* the replayed events.

    ``from_seq`` is the seq of the first replayed event (``last_seq + 1``), or
    ``None`` when not recovered.
    """

    response_id: str
    recovered: bool
    from_seq: int | None

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class Moved:
    """A response this sink was showing now streams to another session: a resume, or a
    re-create of its ``request_id``, elsewhere took it. Nothing more of it comes here,
    not even its ``Done``, so this is the sink's cue to stop waiting for it. Not one of
    the response's events: no ``seq``, never replayed.
    """

    response_id: str
    request_id: str

    @property
    def nbytes(self) -> int:
        return EVENT_OVERHEAD_BYTES


ResponseEvent = (
    Created | Delta | ReasoningDelta | ToolCallAdded | ToolArgumentsDelta | ToolCallDone | Done
)
"""What a response emits and its replay buffer holds."""

SinkEvent = (
    Created
    | Delta
    | ReasoningDelta
    | ToolCallAdded
    | ToolArgumentsDelta
    | ToolCallDone
    | Done
    | ResumeResult
    | Moved
)
"""Everything a :class:`~sessions.sink.Sink` receives."""


@dataclass(frozen=True, slots=True)
class FinishInfo:
    """What ``produce`` returns when the upstream finished normally.

    ``status``/``reason`` let the producer report e.g. ``incomplete``/``max_tokens``.
    Token counts given here override the progressive ``Response.usage``.
    """

    finish_reason: str | None = "stop"
    status: Status = Status.COMPLETED
    reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
