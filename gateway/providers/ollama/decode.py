"""``/api/chat`` answers into normalised events: sans-I/O, bytes in, events out.

The body is NDJSON: one object per line, the last with ``done: true``. A failure
mid-stream is a bare ``{"error": ...}`` line under HTTP 200, checked on every
line before ``done``. Tool calls arrive whole (``message.tool_calls``, arguments
as an object, no id): each becomes one :class:`ToolCallStart` with a generated
call id and one :class:`ToolCallDelta` holding all its arguments. ``thinking``
text is reasoning. Tested on recorded transcripts (``tests/fixtures/ollama/``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson

from gateway import upstream
from gateway.errors import UpstreamError
from gateway.providers.base import (
    Completion,
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)

NAME = "ollama"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class StreamDecoder:
    """Feed body bytes, get events; :meth:`end` when the body ends (raises if cut short)."""

    __slots__ = ("_calls", "_done", "_error", "_lines", "_make_id")

    def __init__(self, make_id: Callable[[], str] = new_call_id) -> None:
        self._lines = upstream.LineDecoder()
        self._make_id = make_id
        self._calls = 0
        self._done = False
        self._error: UpstreamError | None = None

    @property
    def done(self) -> bool:
        """The done line or an error line arrived: nothing after it is read."""
        return self._done

    def raise_error(self) -> None:
        """Raise the error line's failure, once the events before it have gone out."""
        if self._error is not None:
            raise self._error

    def feed(self, piece: bytes) -> list[StreamEvent]:
        return self._decode(self._lines.feed(piece))

    def end(self) -> list[StreamEvent]:
        """The events of a last line without its newline; raises if no done line came."""
        events = self._decode(self._lines.flush())
        if not self._done and not events:
            raise UpstreamError(
                "ollama stream ended before its done line", provider=NAME, retryable=True
            )
        return events

    def _decode(self, lines: list[bytes]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for line in lines:
            if self._done:
                break
            if not line:
                continue
            data = parse(line)
            # An error line arrives with HTTP 200 and may also say done: check it first.
            if "error" in data:
                self._done = True
                self._error = line_error(data)
                break
            message = data.get("message")
            if message:
                thinking = message.get("thinking")
                if thinking:
                    events.append(ReasoningDelta(thinking))
                content = message.get("content")
                if content:
                    events.append(TextDelta(content))
                for call in message.get("tool_calls") or ():
                    self._tool_call(call, events)
            if data.get("done"):
                self._done = True
                reason = finish_reason(data.get("done_reason"), tools=self._calls > 0)
                events.append(Finish(reason, usage(data)))
        return events

    def _tool_call(self, call: dict[str, Any], events: list[StreamEvent]) -> None:
        function = call.get("function") or {}
        index = self._calls
        self._calls += 1
        events.append(
            ToolCallStart(index, call.get("id") or self._make_id(), function.get("name") or "")
        )
        events.append(ToolCallDelta(index, arguments_text(function.get("arguments"))))


def arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments  # some versions pass the model's text through
    return orjson.dumps(arguments if arguments is not None else {}).decode()


def completion(raw: bytes, model: str, make_id: Callable[[], str] = new_call_id) -> Completion:
    data = parse(raw)
    if "error" in data:
        raise line_error(data)
    message = data.get("message") or {}
    calls = tuple(
        ToolCall(
            c.get("id") or make_id(),
            (c.get("function") or {}).get("name") or "",
            arguments_text((c.get("function") or {}).get("arguments")),
        )
        for c in message.get("tool_calls") or ()
    )
    return Completion(
        text=message.get("content") or "",
        finish_reason=finish_reason(data.get("done_reason"), tools=bool(calls)),
        usage=usage(data),
        model=data.get("model") or model,
        tool_calls=calls,
        reasoning=message.get("thinking") or None,
    )


def parse(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("ollama sent invalid JSON", provider=NAME) from None
    if not isinstance(data, dict):
        raise UpstreamError("ollama sent an unexpected JSON value", provider=NAME)
    return data


def finish_reason(done_reason: Any, *, tools: bool) -> FinishReason:
    if done_reason == "length":
        return "length"
    # Ollama says "stop" after tool calls too; the OpenAI shape says tool_calls.
    return "tool_calls" if tools else "stop"


def usage(data: dict[str, Any]) -> Usage:
    return Usage(data.get("prompt_eval_count"), data.get("eval_count"))


def line_error(data: dict[str, Any]) -> UpstreamError:
    # A failure inside the runner (out of memory, crashed model): worth another attempt.
    return UpstreamError(
        f"ollama failed mid-stream: {data['error']}", provider=NAME, retryable=True
    )
