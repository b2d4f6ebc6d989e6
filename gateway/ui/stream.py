"""One UI Message Stream over HTTP: a session sink and the SSE response draining it.

Each POST (new answer) or GET (resume) opens a session of its own whose sink is a
:class:`UISink`; the session manager pushes the response's events into it
synchronously and :class:`UIStreamResponse` writes them out. Everything queued
while a write was under way leaves in the next single write.

A hang-up detaches the session: the answer runs on for the resume window (the
manager's disconnect rule), so a reload can pick it up with
``GET .../{id}/stream``; only the stop route, or the window running out with
nobody back, ends it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.ui.encoder import UIStreamEncoder
from sessions import Session, SessionManager, SinkEvent

# What the SDK's createUIMessageStreamResponse sends (its UI_MESSAGE_STREAM_HEADERS).
UI_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"x-vercel-ai-ui-message-stream", b"v1"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event through at once
]


class UISink:
    """The manager's :class:`~sessions.Sink` for one UI stream: encode now, write later.

    ``push`` never blocks: it encodes and queues. A client reading slower than the
    answer arrives makes the queue grow up to ``max_bytes``; past that the stream
    is given up (``overflowed``) and the client can resume it, as after any other
    disconnect.
    """

    __slots__ = ("_encoder", "_pending", "_size", "_wake", "max_bytes", "overflowed")

    def __init__(self, max_bytes: int, message_id: str | None = None) -> None:
        self._encoder = UIStreamEncoder(message_id)
        self._pending: list[bytes] = []
        self._size = 0
        self._wake = anyio.Event()
        self.max_bytes = max_bytes
        self.overflowed = False

    def push(self, event: SinkEvent) -> None:
        data = self._encoder.encode(event)
        if not data or self.overflowed:
            return
        self._pending.append(data)
        self._size += len(data)
        if self._size > self.max_bytes:
            self.overflowed = True
        self._wake.set()

    @property
    def ended(self) -> bool:
        return self._encoder.ended

    async def chunks(self) -> AsyncIterator[bytes]:
        """Everything queued since the last step, until the ``[DONE]`` line is out."""
        while True:
            if not self._pending:
                if self.ended or self.overflowed:
                    return
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            if self.overflowed:
                return
            chunk = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            yield chunk


class UIStreamResponse(Response):
    """Writes a :class:`UISink`'s parts as SSE; on exit the session is closed (detached)."""

    def __init__(
        self, manager: SessionManager, session: Session, sink: UISink, request_id: str
    ) -> None:
        super().__init__()
        self._manager = manager
        self._session = session
        self._sink = sink
        self._request_id = request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            *UI_STREAM_HEADERS,
                            (b"x-request-id", self._request_id.encode()),
                        ],
                    }
                )
                async for chunk in self._sink.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if self._sink.ended:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        finally:
            # Detach, never cancel: a hang-up is not a Stop.
            self._manager.close_session(self._session)


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
