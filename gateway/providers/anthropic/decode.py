"""Messages API answers into normalised events: sans-I/O, bytes in, events out.

:class:`StreamDecoder` takes the SSE body (``event:`` + ``data:``) as it arrives and
returns the events each piece completes; :func:`completion` reads a whole answer.
Tested on recorded transcripts (``tests/fixtures/anthropic/``).

Every content block has its own ``index`` in the message (text, thinking and
tool blocks count alike); tool calls get their own ``0, 1, ...`` in the order
their blocks start, so OpenAI-style indexes stay dense whatever came before.
A ``tool_use`` block start is a :class:`ToolCallStart`, its ``input_json_delta``
fragments :class:`ToolCallDelta`; ``thinking_delta`` is reasoning. The forced
answer tool of a ``json_object`` request (:data:`request.ANSWER_TOOL`) streams as
text instead, and its ``tool_use`` stop is an ordinary ``stop``.
"""

from __future__ import annotations

import orjson

from gateway.errors import UpstreamError
from gateway.providers._sse import SseDecoder
from gateway.providers.anthropic.errors import NAME, error_event
from gateway.providers.anthropic.request import ANSWER_TOOL
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
    UsageSoFar,
)

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_ANSWER = -1  # the block index map's mark for the answer tool's block


class StreamDecoder:
    """Feed body bytes, get events; :meth:`end` at the end of the body gives the Finish."""

    __slots__ = (
        "_answered",
        "_blocks",
        "_done",
        "_error",
        "_input_tokens",
        "_output_tokens",
        "_secret",
        "_sse",
        "_stop_reason",
        "_usage_pending",
    )

    def __init__(self, secret: str | None = None) -> None:
        self._sse = SseDecoder()
        self._secret = secret
        self._stop_reason: str | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self._done = False
        self._error: UpstreamError | None = None
        self._blocks: dict[int, int] = {}  # block index -> tool call index (or _ANSWER)
        self._answered = False
        # message_start told the input tokens; they go out just before the first
        # output event (see ``feed``).
        self._usage_pending = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, piece: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self._done:
            return events
        loads = orjson.loads
        try:
            for event, data in self._sse.feed(piece):
                if event == "content_block_delta":
                    payload = loads(data)
                    delta = payload["delta"]
                    kind = delta.get("type")
                    if kind == "text_delta":
                        text = delta.get("text")
                        if text:
                            events.append(TextDelta(text))
                    elif kind == "input_json_delta":
                        fragment = delta.get("partial_json")
                        if fragment:
                            call = self._blocks.get(payload["index"])
                            if call == _ANSWER:
                                events.append(TextDelta(fragment))
                            elif call is not None:
                                events.append(ToolCallDelta(call, fragment))
                    elif kind == "thinking_delta":
                        thinking = delta.get("thinking")
                        if thinking:
                            events.append(ReasoningDelta(thinking))
                    # signature_delta, citations_delta: nothing to pass on.
                elif event == "content_block_start":
                    payload = loads(data)
                    block = payload["content_block"]
                    if block.get("type") == "tool_use":
                        if block.get("name") == ANSWER_TOOL:
                            self._blocks[payload["index"]] = _ANSWER
                            self._answered = True
                        else:
                            call = sum(1 for v in self._blocks.values() if v != _ANSWER)
                            self._blocks[payload["index"]] = call
                            events.append(ToolCallStart(call, block["id"], block["name"]))
                elif event == "message_delta":
                    payload = loads(data)
                    self._stop_reason = (payload.get("delta") or {}).get(
                        "stop_reason"
                    ) or self._stop_reason
                    counts = payload.get("usage") or {}
                    # Cumulative, so the last one wins.
                    self._output_tokens = counts.get("output_tokens", self._output_tokens)
                    self._input_tokens = counts.get("input_tokens") or self._input_tokens
                elif event == "message_start":
                    counts = loads(data).get("message", {}).get("usage") or {}
                    self._input_tokens = counts.get("input_tokens")
                    self._output_tokens = counts.get("output_tokens")
                    self._usage_pending = self._input_tokens is not None
                elif event == "message_stop":
                    self._done = True
                    break
                elif event == "error":
                    self._error = error_event(loads(data).get("error"), self._secret)
                    self._done = True
                    break
                # ping, content_block_stop: nothing to do.
        except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
            raise UpstreamError(
                "anthropic sent a malformed stream event", provider=NAME, retryable=True
            ) from None
        if self._usage_pending and events:
            # The input tokens, for an answer cut short from here on. Not on its own:
            # the router counts a stream as answered (no more retries) at its first
            # event, and a stream that fails before any output may still be retried.
            # The output count of message_start is a placeholder (1), not a count.
            self._usage_pending = False
            events.insert(0, UsageSoFar(Usage(self._input_tokens, None)))
        return events

    def end(self) -> Finish:
        """The Finish once the body has ended; raises if it failed or was cut short."""
        if self._error is not None:
            raise self._error
        if not self._done and self._stop_reason is None:
            raise UpstreamError(
                "anthropic stream ended before it finished", provider=NAME, retryable=True
            )
        usage = (
            Usage(self._input_tokens, self._output_tokens)
            if self._input_tokens is not None or self._output_tokens is not None
            else None
        )
        return Finish(_finish_reason(self._stop_reason, answered=self._answered), usage)


def _finish_reason(stop_reason: str | None, *, answered: bool) -> FinishReason:
    reason = STOP_REASONS.get(stop_reason or "", "stop")
    if answered and reason == "tool_calls":
        return "stop"  # the forced answer tool was the answer, not a call to make
    return reason


def completion(raw: bytes, model: str, secret: str | None = None) -> Completion:
    """A whole Messages answer."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("anthropic sent malformed JSON", provider=NAME) from None
    if not isinstance(data, dict):
        raise UpstreamError("anthropic sent an unexpected JSON shape", provider=NAME)
    if data.get("type") == "error":
        raise error_event(data.get("error"), secret)
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    answered = False
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block.get("name") == ANSWER_TOOL:
                texts.append(arguments)
                answered = True
            else:
                calls.append(ToolCall(block.get("id") or "", block.get("name") or "", arguments))
    counts = data.get("usage") or {}
    return Completion(
        text="".join(texts),
        finish_reason=_finish_reason(data.get("stop_reason"), answered=answered),
        usage=Usage(counts.get("input_tokens"), counts.get("output_tokens")),
        model=data.get("model") or model,
        tool_calls=tuple(calls),
        reasoning="".join(thinking) if thinking else None,
    )
