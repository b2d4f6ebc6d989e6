"""Chat Completions answers into normalised events: sans-I/O, bytes in, events out.

:class:`StreamDecoder` takes the SSE body as it arrives (any split of the bytes)
and returns the events each piece completes; :func:`completion` reads a whole
non-streamed answer. Neither does I/O, so both are tested on recorded wire
transcripts (``tests/fixtures/openai/``).

A tool call streams as ``delta.tool_calls[{index, id, function: {name, arguments}}]``
on its first piece and ``{index, function: {arguments}}`` after; calls are told
apart by ``index`` only. The first piece carrying an ``id`` opens the call
(:class:`ToolCallStart`); every non-empty ``arguments`` is a :class:`ToolCallDelta`.
Compatible servers that stream reasoning send ``delta.reasoning_content`` (DeepSeek,
vLLM) or ``delta.reasoning`` (OpenRouter, newer vLLM).

A request for ``n`` > 1 choices or for ``logprobs`` is decoded by the general
path: every choice of every chunk, each event naming its ``choice``, each text
delta carrying the chunk's ``logprobs`` object as it is. Each choice's
``finish_reason`` is its :class:`Finish`, where it came, except the choice that
finishes last: its ``Finish`` waits for the usage chunk and ends the stream, as
the single one of a plain request does. A plain request keeps the first choice's
lean path.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamError
from gateway.providers._sse import SseDecoder
from gateway.providers.base import (
    Choice,
    Completion,
    Finish,
    FinishReason,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from gateway.providers.openai.errors import NAME, error_event

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class StreamDecoder:
    """Feed body bytes, get events; :meth:`end` at the end of the body gives the Finish."""

    __slots__ = (
        "_choices",
        "_done",
        "_error",
        "_finished",
        "_general",
        "_last",
        "_reason",
        "_secret",
        "_sse",
        "_started",
        "_usage",
    )

    def __init__(
        self, secret: str | None = None, *, choices: int = 1, logprobs: bool = False
    ) -> None:
        self._sse = SseDecoder()
        self._secret = secret
        self._reason: str | None = None  # of the choice that finished last
        self._last = 0  # which choice that was
        self._usage: Usage | None = None
        self._done = False
        self._error: UpstreamError | None = None
        self._started: set[tuple[int, int]] = set()  # (choice, tool call index)
        self._choices = choices
        self._finished: set[int] = set()
        self._general = choices > 1 or logprobs

    @property
    def done(self) -> bool:
        """``[DONE]`` or an error event arrived: nothing after it is read."""
        return self._done

    def feed(self, piece: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self._done:
            return events
        loads = orjson.loads
        try:
            for _, data in self._sse.feed(piece):
                if data == b"[DONE]":
                    self._done = True
                    break
                chunk = loads(data)
                choices = chunk.get("choices")
                if choices and self._general:
                    self._every_choice(choices, events)
                elif choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        text = delta.get("content")
                        if text:
                            events.append(TextDelta(text))
                        # Inline, not _more_than_text: this is the per-token path.
                        if (
                            "tool_calls" in delta
                            or "reasoning_content" in delta
                            or "reasoning" in delta
                            or "refusal" in delta
                        ):
                            self._rest(delta, events, 0)
                    finish = choice.get("finish_reason")
                    if finish:
                        self._reason = finish
                elif "error" in chunk:
                    # Raised by ``end``: the events before it in this piece still go out.
                    self._error = error_event(chunk["error"], self._secret)
                    self._done = True
                    break
                counts = chunk.get("usage")
                if counts:
                    self._usage = usage(counts)
        except (orjson.JSONDecodeError, AttributeError, IndexError, KeyError, TypeError):
            raise UpstreamError(
                "openai sent a malformed stream chunk", provider=NAME, retryable=True
            ) from None
        return events

    def _every_choice(self, choices: list[Any], events: list[StreamEvent]) -> None:
        """The general path (``n`` > 1, ``logprobs``): every choice of the chunk."""
        for choice in choices:
            number = choice.get("index") or 0
            delta = choice.get("delta")
            if delta:
                text = delta.get("content")
                if text:
                    events.append(TextDelta(text, number, choice.get("logprobs")))
                if _more_than_text(delta):
                    self._rest(delta, events, number)
            finish = choice.get("finish_reason")
            if finish and number not in self._finished:
                self._finished.add(number)
                if len(self._finished) < self._choices:
                    # Not the last choice to finish: its Finish goes out where it came.
                    events.append(Finish(FINISH_REASONS.get(finish, "stop"), None, number))
                else:
                    self._reason, self._last = finish, number

    def _rest(self, delta: dict[str, Any], events: list[StreamEvent], choice: int) -> None:
        """Everything but text: off the per-token path of a plain text answer."""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            events.append(ReasoningDelta(reasoning, choice))
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            events.append(RefusalDelta(refusal, choice))
        for call in delta.get("tool_calls") or ():
            index = call["index"]
            function = call.get("function") or {}
            if (choice, index) not in self._started:
                self._started.add((choice, index))
                call_id = call.get("id") or f"call_{index}"
                events.append(ToolCallStart(index, call_id, function.get("name") or "", choice))
            arguments = function.get("arguments")
            if arguments:
                events.append(ToolCallDelta(index, arguments, choice))

    def end(self) -> Finish:
        """The Finish once the body has ended; raises if it failed or was cut short."""
        if self._error is not None:
            raise self._error
        if not self._done and self._reason is None:
            raise UpstreamError(
                "openai stream ended before it finished", provider=NAME, retryable=True
            )
        return Finish(FINISH_REASONS.get(self._reason or "", "stop"), self._usage, self._last)


def _more_than_text(delta: dict[str, Any]) -> bool:
    # The general path's test (the first choice's is inlined, with the same keys).
    return (
        "tool_calls" in delta
        or "reasoning_content" in delta
        or "reasoning" in delta
        or "refusal" in delta
    )


def usage(counts: Any) -> Usage | None:
    if not counts:
        return None
    return Usage(counts.get("prompt_tokens"), counts.get("completion_tokens"))


def completion(raw: bytes, model: str, secret: str | None = None) -> Completion:
    """A whole ``chat.completion`` body (all its choices)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("openai sent malformed JSON", provider=NAME) from None
    if not isinstance(data, dict):
        raise UpstreamError("openai sent an unexpected JSON shape", provider=NAME)
    if "error" in data:
        raise error_event(data["error"], secret)
    try:
        choices = [_choice(c) for c in data.get("choices") or [{}]]
    except (AttributeError, KeyError, TypeError):
        raise UpstreamError("openai sent an unexpected choice shape", provider=NAME) from None
    first = choices[0]
    return Completion(
        text=first.text or "",
        finish_reason=first.finish_reason,
        usage=usage(data.get("usage")),
        model=data.get("model") or model,
        tool_calls=first.tool_calls,
        more_choices=tuple(choices[1:]),
        logprobs=first.logprobs,
        reasoning=first.reasoning,
        refusal=first.refusal,
    )


def _choice(choice: dict[str, Any]) -> Choice:
    message = choice.get("message") or {}
    calls = tuple(
        ToolCall(
            c.get("id") or f"call_{i}", c["function"]["name"], c["function"].get("arguments") or ""
        )
        for i, c in enumerate(message.get("tool_calls") or ())
    )
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    refusal = message.get("refusal")
    return Choice(
        text=message.get("content"),
        finish_reason=FINISH_REASONS.get(choice.get("finish_reason") or "", "stop"),
        tool_calls=calls,
        logprobs=choice.get("logprobs"),
        reasoning=reasoning if isinstance(reasoning, str) else None,
        refusal=refusal if isinstance(refusal, str) else None,
    )
