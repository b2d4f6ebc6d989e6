"""Session events -> the AI SDK's UI Message Stream v1 (sans-I/O, bytes out).

Each part is one SSE event ``data: <json>\\n\\n``; the stream ends with
``data: [DONE]``. The shapes follow the ``uiMessageChunkSchema`` of the ``ai``
package (7.0): ``start`` (``messageId``, ``messageMetadata``), ``start-step``,
``text-start`` / ``text-delta`` (``id``, ``delta``) / ``text-end``, then one of

- ``finish-step`` + ``finish`` (``finishReason``, usage in ``messageMetadata``)
  for an answer that ended on its own, ``interrupted`` when it was cut short
  (upstream stream without an end, server shutdown);
- ``abort`` (``reason``) for a stopped one;
- ``error`` (``errorText``) for a failed one: the gateway error's message only,
  which never holds secrets or internal addresses.

The message id is the session response's id, so a replay (resume) announces the
same message as the original stream did and ``useChat`` replaces it rather than
adding a second copy.
"""

from __future__ import annotations

from typing import Any, Final, assert_never

import orjson

from gateway.errors import GatewayError
from gateway.ws.wire import as_gateway_error
from sessions import Created, Delta, Done, Reason, ResumeResult, SinkEvent, Status
from sessions.events import ReasoningDelta, ToolArgumentsDelta, ToolCallAdded, ToolCallDone

DONE_LINE: Final = b"data: [DONE]\n\n"

# The provider contract's finish reasons -> the SDK's FinishReason.
_FINISH_REASONS: Final = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "error": "error",
}

_dumps = orjson.dumps


def part(payload: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(payload) + b"\n\n"


class UIStreamEncoder:
    """One response's stream: remembers which text block is open.

    ``encode`` returns the SSE bytes for one event (possibly several parts, or
    none); after the ``Done`` it has returned the ``[DONE]`` line and ``ended``
    holds.
    """

    __slots__ = ("_blocks", "_text_id", "ended")

    def __init__(self) -> None:
        self._text_id: str | None = None
        self._blocks = 0
        self.ended = False

    def encode(self, event: SinkEvent) -> bytes:
        if self.ended:
            return b""
        match event:
            case Delta():
                return self._text(event.text)
            case Created():
                return self._start(event)
            case Done():
                return self._done(event)
            case ResumeResult():
                return b""  # the replay that follows speaks for itself
            case ReasoningDelta() | ToolCallAdded() | ToolArgumentsDelta() | ToolCallDone():
                return b""  # not part of this stream's parts yet
            case _:
                assert_never(event)

    def _start(self, event: Created) -> bytes:
        metadata: dict[str, Any] = {"model": event.meta.model, "provider": event.meta.provider}
        if event.meta.agent is not None:
            metadata["agent"] = event.meta.agent
        start = {"type": "start", "messageId": event.response_id, "messageMetadata": metadata}
        return part(start) + part({"type": "start-step"})

    def _text(self, text: str) -> bytes:
        if not text:
            return b""
        out = b""
        text_id = self._text_id
        if text_id is None:
            text_id = self._text_id = f"text-{self._blocks}"
            self._blocks += 1
            out = part({"type": "text-start", "id": text_id})
        return out + part({"type": "text-delta", "id": text_id, "delta": text})

    def _close_blocks(self) -> bytes:
        text_id, self._text_id = self._text_id, None
        return b"" if text_id is None else part({"type": "text-end", "id": text_id})

    def _done(self, done: Done) -> bytes:
        self.ended = True
        out = self._close_blocks()
        if done.status is Status.CANCELLED:
            out += part({"type": "abort", "reason": done.reason or "cancelled"})
        elif done.status is Status.FAILED:
            err = _error_of(done)
            out += part({"type": "error", "errorText": err.message})
        else:
            out += part({"type": "finish-step"})
            out += part(
                {
                    "type": "finish",
                    "finishReason": _finish_reason(done),
                    "messageMetadata": _finish_metadata(done),
                }
            )
        return out + DONE_LINE


def _finish_reason(done: Done) -> str:
    if done.status is Status.INCOMPLETE and done.reason != Reason.MAX_TOKENS:
        # Ended without the provider's end of answer (cut short, server shutdown).
        return "interrupted"
    if done.finish_reason is None:
        return "length" if done.reason == Reason.MAX_TOKENS else "stop"
    return _FINISH_REASONS.get(done.finish_reason, "other")


def _finish_metadata(done: Done) -> dict[str, Any]:
    inp, out = done.input_tokens, done.output_tokens
    total = None if inp is None or out is None else inp + out
    metadata: dict[str, Any] = {
        "finishReason": done.finish_reason,
        "usage": {"inputTokens": inp, "outputTokens": out, "totalTokens": total},
    }
    if done.reason is not None:
        metadata["reason"] = done.reason
    return metadata


def _error_of(done: Done) -> GatewayError:
    if done.error is None:
        return as_gateway_error(RuntimeError())
    return as_gateway_error(done.error)
