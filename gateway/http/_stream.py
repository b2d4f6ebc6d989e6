"""The streamed chat completion: an ASGI response around the relay and its SSE encoder.

The relay (:mod:`gateway.relay`) opens the router stream and awaits its first
event *before* the encoder sends the 200 and the SSE headers, so a failure
before the first token (unknown model upstream, 503, auth) is a proper HTTP
error status. A reader task watches for ``http.disconnect`` for the whole
response; a hang-up aborts the relay -- the upstream connection closes in the
same event-loop turn that saw it -- and cancels the response, which leaves the
``async with`` of the router stream and so closes the upstream request the
orderly way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.agents import Prepared
from gateway.http._chunks import ChunkEncoder, ChunkWriter
from gateway.inflight import InFlight
from gateway.relay import Relay
from gateway.router import Router
from gateway.telemetry import ChatSummary


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
        self._in_flight = in_flight
        self._relay = Relay(router, prepared, summary, log_content=log_content)
        self._model = prepared.route.requested_model
        self._include_usage = include_usage
        self._choices = prepared.request.options.n or 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = self._relay
        request_id = relay.summary.request_id
        writer = ChunkWriter(
            request_id, int(time.time()), self._model, self._include_usage, self._choices
        )
        encoder = ChunkEncoder(send, writer, request_id)
        # At the drain deadline the drain cancels this scope: the relay, cancelled
        # without a client abort, ends the answer as server_draining (in-band, then
        # [DONE]; a 503 before the first token), so no client takes a cut answer for
        # a whole one.
        with anyio.CancelScope() as cut, self._in_flight.track(cut.cancel):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope, relay.abort)
                # Starting a request is the longest stretch of CPU in the gateway: the
                # HTTP request, its parsing and routing so far, the SDK's request build
                # next, a few hundred microseconds each. Yielding in between lets the
                # tokens of running streams go out meanwhile instead of queueing behind
                # the whole start. (A WebSocket request gets this break for free: its
                # producer is a task of its own.)
                await relay.run(encoder, yield_first=True)
                tg.cancel_scope.cancel()


async def _cancel_on_disconnect(
    receive: Receive, scope: anyio.CancelScope, abort: Callable[[], None]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            abort()
            scope.cancel()
            return
