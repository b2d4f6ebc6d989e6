"""The streamed chat completion: an ASGI response that owns the router stream.

The router stream is opened and its first event awaited *before* the 200 and
the SSE headers go out, so a failure before the first token (unknown model
upstream, 503, auth) is a proper HTTP error status. A reader task watches for
``http.disconnect`` for the whole response; a hang-up cancels the response, which
leaves the ``async with`` of the router stream and so closes the upstream request;
before cancelling, the reader aborts the open router stream, so the upstream
connection closes in the same event-loop turn that saw the hang-up.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import assert_never

import anyio
import anyio.lowlevel
import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.agents import Prepared
from gateway.errors import GatewayError, InternalError
from gateway.http._chunks import DONE, ChunkWriter
from gateway.http._responses import error_headers
from gateway.inflight import InFlight
from gateway.providers.base import (
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from gateway.router import RoutedStream, Router
from gateway.telemetry import ChatSummary

_log = structlog.get_logger("gateway.http.chat")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event through at once
]


class ChatStreamResponse(Response):
    def __init__(
        self,
        router: Router,
        in_flight: InFlight,
        prepared: Prepared,
        summary: ChatSummary,
        *,
        include_usage: bool,
        log_content: bool,
    ) -> None:
        super().__init__()
        self._router = router
        self._in_flight = in_flight
        self._prepared = prepared
        self._summary = summary
        self._include_usage = include_usage
        self._log_content = log_content
        self._headers_sent = False
        self._ended = False  # a complete answer (or an error) went out
        self._upstream: RoutedStream | None = None  # while the router stream is open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with self._in_flight.track():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope, self._abort)
                    await self._respond(send)
                    tg.cancel_scope.cancel()
        finally:
            if not self._ended:
                self._summary.cancelled()
            self._summary.emit()

    async def _respond(self, send: Send) -> None:
        # Starting a request is the longest stretch of CPU in the gateway: the HTTP
        # request, its parsing and routing so far, the SDK's request build next, a
        # few hundred microseconds each. Yielding in between lets the tokens of
        # running streams go out meanwhile instead of queueing behind the whole
        # start. (A WebSocket request gets this break for free: its producer is a
        # task of its own.)
        await anyio.lowlevel.checkpoint()
        try:
            async with self._router.stream(self._prepared.route, self._prepared.request) as events:
                self._upstream = events
                iterator = events.__aiter__()
                first = await _next(iterator)
                self._summary.routed(events.target.provider, events.target.model)
                await self._stream(send, first, iterator)
        except GatewayError as err:
            await self._fail(send, err)
        except Exception:
            _log.exception("chat.stream_failed", request_id=self._summary.request_id)
            await self._fail(send, InternalError("internal error"))

    async def _stream(
        self, send: Send, first: StreamEvent | None, iterator: AsyncIterator[StreamEvent]
    ) -> None:
        summary = self._summary
        writer = ChunkWriter(
            summary.request_id,
            int(time.time()),
            self._prepared.route.requested_model,
            self._include_usage,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", summary.request_id.encode())],
            }
        )
        self._headers_sent = True
        # The role chunk leaves together with the first token, which is already in
        # hand: one write and one wake-up of the client fewer on the way to it.
        role = writer.role()
        if not isinstance(first, TextDelta):
            await _body(send, role)  # no token to ride on
            role = b""
        collected: list[str] | None = [] if self._log_content else None
        finish = Finish("stop")
        event = first
        while event is not None:
            match event:
                case TextDelta(text=text):
                    summary.mark_first_token()
                    if collected is not None:
                        collected.append(text)
                    await _body(send, role + writer.content(text))
                    role = b""
                case ReasoningDelta(text=text):
                    await _body(send, role + writer.reasoning(text))
                    role = b""
                case ToolCallStart(index=index, call_id=call_id, name=name):
                    summary.mark_first_token()
                    await _body(send, role + writer.tool_call_start(index, call_id, name))
                    role = b""
                case ToolCallDelta(index=index, arguments=arguments):
                    await _body(send, writer.tool_call_arguments(index, arguments))
                case Finish():
                    finish = event
                case _:
                    assert_never(event)
            event = await _next(iterator)
        summary.finish_reason = finish.reason
        summary.usage(finish.usage)
        if collected is not None:
            summary.completion = "".join(collected)
        tail = writer.finish(finish.reason)
        if self._include_usage:
            tail += writer.usage(finish.usage)
        self._ended = True
        await _body(send, tail + DONE, more=False)

    def _abort(self) -> None:
        upstream = self._upstream
        if upstream is not None:
            upstream.abort()  # a no-op once the router stream has closed

    async def _fail(self, send: Send, err: GatewayError) -> None:
        self._summary.failed(err)
        self._ended = True
        if self._headers_sent:
            # The 200 is gone: the error travels in-band, as in OpenAI's own streams.
            await _body(send, ChunkWriter.error(err), more=False)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"x-request-id", self._summary.request_id.encode()),
            *((k.encode(), v.encode()) for k, v in error_headers(err).items()),
        ]
        await send({"type": "http.response.start", "status": err.http_status, "headers": headers})
        await _body(send, ChunkWriter.error_body(err), more=False)


async def _next(iterator: AsyncIterator[StreamEvent]) -> StreamEvent | None:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return None


async def _body(send: Send, chunk: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _cancel_on_disconnect(
    receive: Receive, scope: anyio.CancelScope, abort: Callable[[], None]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            abort()
            scope.cancel()
            return
