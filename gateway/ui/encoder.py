"""Session events -> the AI SDK's UI Message Stream v1 (sans-I/O, bytes out).

Each part is one SSE event ``data: <json>\\n\\n``; the stream ends with
``data: [DONE]``. The shapes follow the ``uiMessageChunkSchema`` of the ``ai``
package (7.0): ``start`` (``messageId``, ``messageMetadata``), ``start-step``,
then the answer's blocks in the order they arrive:

- ``text-start`` / ``text-delta`` (``id``, ``delta``) / ``text-end``;
- ``reasoning-start`` / ``reasoning-delta`` / ``reasoning-end`` (the same fields);
  a text or reasoning block ends when the other kind, or a tool call, begins;
- per tool call ``tool-input-start`` (``toolCallId``, ``toolName``),
  ``tool-input-delta`` (``inputTextDelta``) pieces, then ``tool-input-available``
  with ``input`` the parsed arguments object, or ``tool-input-error``
  (``errorText``, ``input`` the raw text) when they are not a JSON object or the
  answer ended before they were complete (parallel calls may interleave: they
  are told apart by ``toolCallId``);

then one of

- ``finish-step`` + ``finish`` (``finishReason``, e.g. ``tool-calls``, usage in
  ``messageMetadata``) for an answer that ended on its own, ``interrupted`` when
  it was cut short (upstream stream without an end, server shutdown);
- ``abort`` (``reason``) for a stopped one;
- ``error`` (``errorText``) for a failed one: the gateway error's message only,
  which never holds secrets or internal addresses.

The message id is the session response's id, so a replay (resume) announces the
same message as the original stream did and ``useChat`` replaces it rather than
adding a second copy. A follow-up turn after tool results names the assistant
message it continues instead; its resume still names the response, because
``useChat`` rebuilds a resumed message from the replay alone (the new step only)
and would otherwise overwrite the continued message's tool parts with it.
"""

from __future__ import annotations

from typing import Any, Final, assert_never

import orjson

from gateway.errors import GatewayError
from gateway.ws.wire import as_gateway_error
from sessions import Created, Delta, Done, Moved, Reason, ResumeResult, SinkEvent, Status
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
    """One response's stream: remembers which text or reasoning block is open and
    which tool calls have begun.

    ``encode`` returns the SSE bytes for one event (possibly several parts, or
    none); after the ``Done`` it has returned the ``[DONE]`` line and ``ended``
    holds. ``message_id`` replaces the response id in ``start``: a follow-up turn
    after tool results continues the assistant message the client already has,
    and ``useChat`` appends to it only when ``start`` names that message.
    """

    __slots__ = ("_blocks", "_calls", "_message_id", "_open", "ended")

    def __init__(self, message_id: str | None = None) -> None:
        self._message_id = message_id
        self._open: tuple[str, str] | None = None  # ("text" | "reasoning", block id)
        self._blocks = 0
        # Begun and not yet complete, by index: (toolCallId, toolName, pieces so far).
        self._calls: dict[int, tuple[str, str, list[str]]] = {}
        self.ended = False

    def encode(self, event: SinkEvent) -> bytes:
        if self.ended:
            return b""
        match event:
            case Delta():
                return self._block("text", event.text)
            case ReasoningDelta():
                return self._block("reasoning", event.text)
            case ToolCallAdded():
                return self._tool_start(event.index, event.call_id, event.name)
            case ToolArgumentsDelta():
                return self._tool_delta(event)
            case ToolCallDone():
                return self._tool_done(event)
            case Created():
                return self._start(event)
            case Done():
                return self._done(event)
            case ResumeResult():
                return b""  # the replay that follows speaks for itself
            case Moved():
                return self._moved()
            case _:
                assert_never(event)

    def _start(self, event: Created) -> bytes:
        metadata: dict[str, Any] = {"model": event.meta.model, "provider": event.meta.provider}
        if event.meta.agent is not None:
            metadata["agent"] = event.meta.agent
        message_id = self._message_id or event.response_id
        start = {"type": "start", "messageId": message_id, "messageMetadata": metadata}
        return part(start) + part({"type": "start-step"})

    def _block(self, kind: str, text: str) -> bytes:
        """A piece of text or reasoning: the SDK folds each block into one part, so a
        change of kind ends the open block and starts a new one."""
        if not text:
            return b""
        out = b""
        if self._open is None or self._open[0] != kind:
            out = self._close_block()
            block_id = f"{kind}-{self._blocks}"
            self._blocks += 1
            self._open = (kind, block_id)
            out += part({"type": f"{kind}-start", "id": block_id})
        return out + part({"type": f"{kind}-delta", "id": self._open[1], "delta": text})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        (kind, block_id), self._open = self._open, None
        return part({"type": f"{kind}-end", "id": block_id})

    def _tool_start(self, index: int, call_id: str, name: str) -> bytes:
        self._calls[index] = (call_id, name, [])
        out = self._close_block()
        return out + part({"type": "tool-input-start", "toolCallId": call_id, "toolName": name})

    def _tool_delta(self, event: ToolArgumentsDelta) -> bytes:
        call = self._calls.get(event.index)
        if call is None or not event.delta:
            return b""  # every call begins with its ToolCallAdded; empty pieces say nothing
        call[2].append(event.delta)
        return part(
            {"type": "tool-input-delta", "toolCallId": call[0], "inputTextDelta": event.delta}
        )

    def _tool_done(self, event: ToolCallDone) -> bytes:
        out = b""
        if self._calls.pop(event.index, None) is None:
            out = self._tool_start(event.index, event.call_id, event.name)
            self._calls.pop(event.index)
        ids = {"toolCallId": event.call_id, "toolName": event.name}
        parsed = _arguments(event.arguments)
        if parsed is None:
            # The SDK's own answer to a call it cannot parse: the call ends in
            # output-error with the raw text, and the follow-up turn tells the model.
            error = "the tool call's arguments are not a JSON object"
            return out + part(
                {"type": "tool-input-error", **ids, "input": event.arguments, "errorText": error}
            )
        return out + part({"type": "tool-input-available", **ids, "input": parsed})

    def _unfinished_calls(self) -> bytes:
        """Calls cut off before their arguments were complete (stop, failure) end as
        errors: left streaming, they would make the chat's next request unsendable."""
        out = b""
        for call_id, name, pieces in self._calls.values():
            out += part(
                {
                    "type": "tool-input-error",
                    "toolCallId": call_id,
                    "toolName": name,
                    "input": "".join(pieces),
                    "errorText": "the answer ended before this call's arguments were complete",
                }
            )
        self._calls.clear()
        return out

    def _moved(self) -> bytes:
        """Another stream took the answer over (a resume of the same chat, e.g. a
        reload or a second tab): this one ends as a stopped one, so that its
        ``useChat`` is ready again instead of waiting for parts that go elsewhere."""
        self.ended = True
        out = self._close_block() + self._unfinished_calls()
        return out + part({"type": "abort", "reason": "moved"}) + DONE_LINE

    def _done(self, done: Done) -> bytes:
        self.ended = True
        out = self._close_block() + self._unfinished_calls()
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


def _arguments(text: str) -> dict[str, Any] | None:
    """A call's arguments as the object they encode (no arguments at all is ``{}``,
    as the SDK reads them), or ``None`` when they are not a JSON object."""
    if not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


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
