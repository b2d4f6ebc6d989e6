"""``x-request-id`` on every HTTP response, errors and unknown routes included.

The id is made when the request arrives. A handler that has an id of its own (a chat
completion's ``chatcmpl-...``, which its log summary carries too) replaces it with
:func:`set_request_id`, so the header matches the log line. The catch-all 500
handler runs outside this middleware and reads the id with :func:`request_id_of`.
(WebSocket denial responses set the header themselves, with :func:`new_request_id`:
wrapping every frame's send for that would cost on the hot path.)
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_HEADER = HEADER.encode()
_STATE_KEY = "request_id"


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def set_request_id(conn: HTTPConnection, request_id: str) -> None:
    conn.state.request_id = request_id


def request_id_of(conn: HTTPConnection) -> str:
    found = getattr(conn.state, _STATE_KEY, None)
    return found if isinstance(found, str) else new_request_id()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_STATE_KEY] = new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append((_HEADER, str(state[_STATE_KEY]).encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
