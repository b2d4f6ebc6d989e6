"""OpenAI ``chat.completion.chunk`` SSE events, built cheaply, and the relay's SSE encoder.

Everything that is the same for every chunk of a response is serialised once;
a content delta is then two byte concatenations around ``orjson.dumps(text)``.
A delta of another choice than the first (``n`` > 1) or one with ``logprobs``
is built whole: ``choices[0].index`` is the event's choice, ``logprobs`` the
provider's object for that piece, as OpenAI streams them.

:class:`ChunkEncoder` is the HTTP surface behind :class:`gateway.relay.Relay`.
Every answer that has sent its 200 ends with ``data: [DONE]``: after the finish
chunk (and the usage chunk, when asked for) when the provider finished, after
one OpenAI-shaped ``data: {"error": {...}}`` event when it broke off (upstream
failure or timeout after the first token, a stream cut short, a shutdown), so a
client can tell a cut answer from a whole one. A client that hung up is sent
nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, assert_never

import orjson
from starlette.types import Send

from gateway.errors import GatewayError
from gateway.http._responses import error_headers
from gateway.providers.base import (
    Finish,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageSoFar,
)
from sessions import Status

if TYPE_CHECKING:
    from gateway.relay import Ending
    from gateway.router import Target

DONE = b"data: [DONE]\n\n"

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event through at once
]


class ChunkWriter:
    """The chunks of one response; ``choices`` is its ``n`` (one role chunk each)."""

    __slots__ = ("_base", "_choices", "_content_head", "_content_tail", "_include_usage")

    def __init__(
        self,
        completion_id: str,
        created: int,
        model: str,
        include_usage: bool,
        choices: int = 1,
    ) -> None:
        self._include_usage = include_usage
        self._choices = choices
        self._base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        # Serialise a template once and split it at the placeholder: what comes
        # before and after the delta text never changes within one response.
        # Bench: not measured on its own (docs/performance.md).
        marker = "\x00TEXT\x00"
        template = orjson.dumps(self._chunk({"content": marker}, None))
        head, tail = template.rsplit(orjson.dumps(marker), 1)  # the delta comes last
        self._content_head = b"data: " + head
        self._content_tail = tail + b"\n\n"

    def _chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None,
        choice: int = 0,
        logprobs: Any = None,
    ) -> dict[str, Any]:
        chunk = {
            **self._base,
            "choices": [
                {
                    "index": choice,
                    "delta": delta,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: null on all but the usage chunk
        return chunk

    def role(self) -> bytes:
        """The first chunk of every choice: its role and an empty content."""
        return b"".join(
            _event(self._chunk({"role": "assistant", "content": ""}, None, choice))
            for choice in range(self._choices)
        )

    def content(self, text: str) -> bytes:
        """A text delta of the first choice without logprobs: the per-token path."""
        return self._content_head + orjson.dumps(text) + self._content_tail

    def content_of(self, text: str, choice: int, logprobs: Any) -> bytes:
        """A text delta of any choice, with the provider's logprobs for it (or null)."""
        return _event(self._chunk({"content": text}, None, choice, logprobs))

    def reasoning(self, text: str, choice: int = 0) -> bytes:
        # OpenAI's own API streams no reasoning text; compatible servers (DeepSeek,
        # vLLM) carry it as ``reasoning_content``, which clients already read.
        return _event(self._chunk({"reasoning_content": text}, None, choice))

    def refusal(self, text: str, choice: int = 0) -> bytes:
        """A piece of a refusal, as OpenAI streams it (``delta.refusal``)."""
        return _event(self._chunk({"refusal": text}, None, choice))

    def tool_call_start(self, index: int, call_id: str, name: str, choice: int = 0) -> bytes:
        """The first piece of a tool call: index, id, type and name, empty arguments."""
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return _event(self._chunk({"tool_calls": [call]}, None, choice))

    def tool_call_arguments(self, index: int, arguments: str, choice: int = 0) -> bytes:
        """A further piece of a tool call's arguments: index and fragment only."""
        call = {"index": index, "function": {"arguments": arguments}}
        return _event(self._chunk({"tool_calls": [call]}, None, choice))

    def finish(self, reason: str, choice: int = 0) -> bytes:
        return _event(self._chunk({}, reason, choice))

    def usage_chunk(self, usage: Usage | None) -> bytes:
        """The usage chunk when the request asked for it (``include_usage``), else nothing."""
        return self.usage(usage) if self._include_usage else b""

    def usage(self, usage: Usage | None) -> bytes:
        prompt = (usage.input_tokens if usage else None) or 0
        completion = (usage.output_tokens if usage else None) or 0
        chunk = {
            **self._base,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        return _event(chunk)

    @staticmethod
    def error(err: GatewayError) -> bytes:
        """The in-band SSE error event, once the 200 has been sent."""
        return _event({"error": err.to_dict()})

    @staticmethod
    def error_body(err: GatewayError) -> bytes:
        """The plain JSON error body, while the status can still say it."""
        return orjson.dumps({"error": err.to_dict()})


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ChunkEncoder:
    """The relay's encoder for ``stream: true`` chat completions (one per response)."""

    __slots__ = ("_headers_sent", "_pending", "_request_id", "_send", "_writer")

    def __init__(self, send: Send, writer: ChunkWriter, request_id: str) -> None:
        self._send = send
        self._writer = writer
        self._request_id = request_id
        self._headers_sent = False
        # The role chunk leaves together with the first token (one write and one
        # wake-up of the client fewer on the way to it), or with the ending.
        # Bench: SSE added time to first token p50 +2.28 / +2.55 -> +1.73 ms, within
        # the run-to-run spread (bench/README.md optimisation log).
        self._pending = b""

    @property
    def headers_sent(self) -> bool:
        return self._headers_sent

    async def opened(self, target: Target) -> None:
        # Only now, with the first event in hand: a failure before it is a proper
        # HTTP error status rather than an error inside a 200.
        await self._send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, (b"x-request-id", self._request_id.encode())],
            }
        )
        self._headers_sent = True
        self._pending = self._writer.role()

    def event(self, event: StreamEvent) -> Awaitable[object] | None:
        match event:
            case TextDelta():
                if event.logprobs is None and not event.choice:
                    body = self._writer.content(event.text)
                else:
                    body = self._writer.content_of(event.text, event.choice, event.logprobs)
                if self._pending:
                    body = self._pending + body
                    self._pending = b""
                return self._send({"type": "http.response.body", "body": body, "more_body": True})
            case ReasoningDelta():
                return self._body(self._writer.reasoning(event.text, event.choice))
            case RefusalDelta():
                return self._body(self._writer.refusal(event.text, event.choice))
            case ToolCallStart():
                chunk = self._writer.tool_call_start(
                    event.index, event.call_id, event.name, event.choice
                )
                return self._body(chunk)
            case ToolCallDelta():
                chunk = self._writer.tool_call_arguments(event.index, event.arguments, event.choice)
                return self._body(chunk)
            case UsageSoFar():
                return None  # OpenAI's stream has no place for it: the summary logs it
            case Finish():
                # Each choice's finish chunk rides with the next write: the following
                # text of another choice, or the usage chunk and [DONE] (``ended``).
                self._pending += self._writer.finish(event.reason, event.choice)
                return None
            case _:
                assert_never(event)

    def _body(self, chunk: bytes) -> Awaitable[object]:
        body = self._pending + chunk
        self._pending = b""
        return self._send({"type": "http.response.body", "body": body, "more_body": True})

    async def ended(self, ending: Ending) -> Ending:
        error = ending.error
        if not self._headers_sent:
            if error is not None:
                await self._error_response(error)
            return ending  # else the client hung up before anything was answered
        if ending.status is Status.CANCELLED:
            return ending  # the client hung up: nobody to tell
        writer = self._writer
        if error is not None:
            # The 200 is gone: the error travels in-band, as in OpenAI's own streams.
            tail = ChunkWriter.error(error)
        else:
            finish = ending.finish
            assert finish is not None  # an ending without error has the provider's finish
            # The finish chunks are pending already (``event``).
            tail = writer.usage_chunk(finish.usage)
        body = self._pending + tail + DONE
        self._pending = b""
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
        return ending

    async def _error_response(self, err: GatewayError) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"x-request-id", self._request_id.encode()),
            *((k.encode(), v.encode()) for k, v in error_headers(err).items()),
        ]
        await self._send(
            {"type": "http.response.start", "status": err.http_status, "headers": headers}
        )
        body = ChunkWriter.error_body(err)
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
