"""Session manager: sessions, responses, replay buffers. Never imports ``gateway``.

Pure and free of socket I/O: the gateway's WebSocket endpoint turns the events
into wire frames and the exceptions into wire error codes.
"""

from sessions.backend import Backend, Control, ControlOp, RemoteRecord
from sessions.errors import (
    BackendUnavailable,
    ConversationBusy,
    Draining,
    DuplicateRequest,
    ReplayUnavailable,
    SessionClosed,
    SessionError,
    TooManyResponses,
    UnknownResponse,
)
from sessions.events import (
    EVENT_OVERHEAD_BYTES,
    MAX_DELTA_CHARS,
    Created,
    Delta,
    Done,
    FinishInfo,
    Moved,
    Reason,
    ResponseEvent,
    ResponseMeta,
    ResumeResult,
    SinkEvent,
    Status,
)
from sessions.lifecycle import TRANSITIONS, IllegalTransition, State
from sessions.manager import Clock, Produce, SessionManager
from sessions.memory import MemoryBackend
from sessions.replay import ReplayBuffer
from sessions.response import Response, TokenCounts
from sessions.session import Session
from sessions.sink import Sink

__all__ = [
    "EVENT_OVERHEAD_BYTES",
    "MAX_DELTA_CHARS",
    "TRANSITIONS",
    "Backend",
    "BackendUnavailable",
    "Clock",
    "Control",
    "ControlOp",
    "ConversationBusy",
    "Created",
    "Delta",
    "Done",
    "Draining",
    "DuplicateRequest",
    "FinishInfo",
    "IllegalTransition",
    "MemoryBackend",
    "Moved",
    "Produce",
    "Reason",
    "RemoteRecord",
    "ReplayBuffer",
    "ReplayUnavailable",
    "Response",
    "ResponseEvent",
    "ResponseMeta",
    "ResumeResult",
    "Session",
    "SessionClosed",
    "SessionError",
    "SessionManager",
    "Sink",
    "SinkEvent",
    "State",
    "Status",
    "TokenCounts",
    "TooManyResponses",
    "UnknownResponse",
]
