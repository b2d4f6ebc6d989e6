"""The coroutine the session manager runs for one response: the relay into a session response.

:class:`SessionEncoder` is the WebSocket surface behind :class:`gateway.relay.Relay`:
each text delta is one synchronous ``Response.emit_delta`` (the outbox turns it
into frames; one over ``MAX_DELTA_CHARS`` the response splits into several),
nothing else on the per-token path. Reasoning and tool calls become their session
events; a :class:`UsageSoFar` updates ``Response.usage``, so that a response ended
early still reports the input tokens the upstream had told. At the provider's
finish every tool call is closed by a ``ToolCallDone`` with its whole arguments,
before the manager's ``Done``. The ending becomes what the manager expects of a
``produce``: a :class:`FinishInfo` for a finished (or cut short) stream, the error
raised for a failed one. A response the manager ended itself (Stop, disconnect,
expiry, drain) already has its ``Done``; the manager aborts the relay and cancels
this coroutine.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from typing import assert_never

from gateway.providers.base import (
    Finish,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageSoFar,
)
from gateway.relay import Ending, Relay
from gateway.router import Target
from gateway.telemetry import ChatSummary
from sessions import FinishInfo, Response, Status


class Producer:
    """``await Producer(relay)(response)`` streams the relay's request into ``response``."""

    __slots__ = ("_relay",)

    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    async def __call__(self, response: Response) -> FinishInfo:
        relay = self._relay
        relay.summary.extra["response_id"] = response.id
        # A forced end (cancel, disconnect, expiry, drain) cuts the upstream off at once.
        response.on_abort(relay.abort)
        ending = await relay.run(SessionEncoder(response, relay.summary))
        error = ending.error
        if ending.status is Status.FAILED and error is not None:
            raise error
        finish = ending.finish
        usage = ending.usage
        return FinishInfo(
            finish_reason=finish.reason if finish is not None else None,
            status=ending.status,
            reason=ending.reason,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        )


class _Call:
    """A tool call being streamed: its arguments so far, for its ``ToolCallDone``."""

    __slots__ = ("call_id", "name", "parts")

    def __init__(self, call_id: str, name: str) -> None:
        self.call_id = call_id
        self.name = name
        self.parts: list[str] = []


class SessionEncoder:
    """The relay's encoder for one WebSocket session response."""

    __slots__ = ("_calls", "_emit", "_response", "_summary")

    def __init__(self, response: Response, summary: ChatSummary) -> None:
        self._response = response
        self._summary = summary  # the relay's: this surface adds its own facts
        self._emit = response.emit_delta
        self._calls: dict[int, _Call] = {}  # by index, in the order they began

    async def opened(self, target: Target) -> None:
        pass  # response.created went out when the manager created the response

    def event(self, event: StreamEvent) -> Awaitable[object] | None:
        match event:
            case TextDelta():
                self._emit(event.text)
            case RefusalDelta():
                # The socket and the UI stream have no refusal of their own (OpenAI's
                # Realtime and the AI SDK's parts neither): it is the answer's text.
                self._emit(event.text)
            case ReasoningDelta():
                self._response.emit_reasoning(event.text)
            case ToolCallStart():
                self._calls[event.index] = _Call(event.call_id, event.name)
                self._response.emit_tool_call(event.index, event.call_id, event.name)
            case ToolCallDelta():
                call = self._calls.get(event.index)
                call_id = ""
                if call is not None:  # the contract starts every call before its pieces
                    call.parts.append(event.arguments)
                    call_id = call.call_id
                self._response.emit_tool_arguments(event.index, event.arguments, call_id)
            case UsageSoFar():
                # What the upstream told before its finish: a response the manager
                # ends first (Stop, disconnect, expiry, drain) reports it in its Done.
                usage = self._response.usage
                if event.usage.input_tokens is not None:
                    usage.input_tokens = event.usage.input_tokens
                if event.usage.output_tokens is not None:
                    usage.output_tokens = event.usage.output_tokens
            case Finish():
                # The calls are complete; the manager's Done follows from what
                # ``Producer`` returns.
                response = self._response
                for index, call in self._calls.items():
                    arguments = "".join(call.parts)
                    response.emit_tool_call_done(index, call.call_id, call.name, arguments)
                self._calls.clear()
            case _:
                assert_never(event)
        return None

    async def ended(self, ending: Ending) -> Ending:
        response = self._response
        summary = self._summary
        summary.extra["last_seq"] = response.seq
        if summary.input_tokens is None:
            summary.input_tokens = response.usage.input_tokens
        if summary.output_tokens is None:
            summary.output_tokens = response.usage.output_tokens
        done = response.done
        if done is not None:
            # The manager ended it first (Stop, disconnect, expiry, drain): its Done
            # says how; what the relay saw is only the cancellation.
            return replace(ending, status=done.status, reason=done.reason)
        return ending
