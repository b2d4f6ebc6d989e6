"""``/api/v1/ws``: the handshake and the per-connection task group. Transport only.

Handshake checks, in order: the ``chat-gateway.v1`` subprotocol (400), the
``Origin`` (403, against Cross-Site WebSocket Hijacking), the client key (401).
Rejections are HTTP denial responses, so a non-browser client sees the status
and a JSON error body. After ``accept`` the instance and per-key socket limits
apply (close 1013), then the connection runs as one task group: a reader that
feeds :class:`~gateway.ws.protocol.SocketProtocol` and the outbox's writer.

The route is a plain ASGI app rather than a Starlette endpoint function, so the
writer can hand each frame to the server's own ``send``: the handshake and the
reader keep Starlette's ``WebSocket`` (and its state checks), while the frames,
one per token on an idle socket, skip two wrapper layers.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import anyio
import orjson
import structlog
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import origins, request_id
from gateway.auth import bearer_token
from gateway.errors import BadRequest, Forbidden, GatewayError, Unauthorized
from gateway.services import services_of
from gateway.ws import close_codes
from gateway.ws.messages import PROTOCOL
from gateway.ws.outbox import CLOSE_GRACE_S, Outbox
from gateway.ws.protocol import SocketProtocol
from sessions import EVENT_OVERHEAD_BYTES

_log = structlog.get_logger("gateway.ws")

PATH = "/api/v1/ws"
_BEARER_PREFIX = "bearer."


class SocketConnection:
    """One accepted socket: its outbox, its protocol state and the two tasks moving frames."""

    __slots__ = ("_send", "_websocket", "closed_with", "outbox", "protocol")

    def __init__(
        self, websocket: WebSocket, send: Send, protocol: SocketProtocol, outbox: Outbox
    ) -> None:
        self._websocket = websocket
        self._send = send  # the server's own: frames bypass the WebSocket wrapper
        self.protocol = protocol
        self.outbox = outbox
        self.closed_with: int | None = None  # the close code, when the server closed

    def draining(self, deadline_ms: int) -> None:
        self.protocol.draining(deadline_ms)

    def close(self, code: int) -> None:
        self.protocol.close(code)

    async def run(self, idle_timeout_s: float) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read, idle_timeout_s, tg.cancel_scope)
                await self._write()
                tg.cancel_scope.cancel()
        except Exception:
            # A bug, not the client: say so with 1011 (its responses can be resumed).
            _log.exception("ws.connection_failed", session_id=self.protocol.session_id)
            self.protocol.detach()
            with anyio.move_on_after(CLOSE_GRACE_S):
                with contextlib.suppress(Exception):
                    await self._websocket.close(close_codes.INTERNAL_ERROR)
        finally:
            self.protocol.detach()

    async def _read(self, idle_timeout_s: float, connection_scope: anyio.CancelScope) -> None:
        receive = self._websocket.receive
        protocol = self.protocol
        closing = False
        # One deadline pushed forward per message: no timer task, no polling.
        with anyio.CancelScope(deadline=anyio.current_time() + idle_timeout_s) as idle:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    # The client is gone: stop the writer too; the responses detach.
                    connection_scope.cancel()
                    return
                if closing or self.outbox.closing:
                    # Past the close decision: drain until the peer's disconnect.
                    closing = True
                    idle.deadline = anyio.current_time() + idle_timeout_s
                    continue
                idle.deadline = anyio.current_time() + idle_timeout_s
                text = message.get("text")
                if text is not None:
                    await protocol.receive_text(text)
                else:
                    protocol.receive_bytes(message.get("bytes") or b"")
        if idle.cancelled_caught:
            protocol.close(close_codes.IDLE_TIMEOUT)

    async def _write(self) -> None:
        send = self._send

        async def send_text(data: bytes) -> None:
            # ASGI text frames are str; orjson gives bytes. One decode per frame.
            try:
                await send({"type": "websocket.send", "text": data.decode()})
            except RuntimeError as exc:
                if _closed_by_server(exc):
                    raise _ClosedByServer from None
                raise

        async def close(code: int, reason: str) -> None:
            # Detach before the close frame: it may wait on a client that does not read,
            # and its responses must not wait with it.
            self.protocol.detach()
            self.closed_with = code
            try:
                await self._websocket.close(code, reason)
            except RuntimeError as exc:
                if not _closed_by_server(exc):
                    raise

        try:
            await self.outbox.run_writer(send_text, close)
        except (WebSocketDisconnect, OSError):
            return  # the peer went away mid-send; the reader sees the disconnect


class _ClosedByServer(OSError):
    """uvicorn closed the socket on its own: the peer is as good as gone."""


def _closed_by_server(exc: RuntimeError) -> bool:
    """uvicorn closes a socket itself on a client's protocol error (1007 invalid UTF-8,
    1009 a frame over ``ws_max_size``) or a keep-alive timeout, queueing the disconnect
    for the reader at that moment. A send racing that queued disconnect gets this bare
    RuntimeError rather than the OSError the ASGI spec asks for; there is no state to
    ask beforehand, so the message is the only way to tell it from a bug."""
    return "after sending 'websocket.close'" in str(exc)


async def websocket_app(scope: Scope, receive: Receive, send: Send) -> None:
    await websocket_endpoint(WebSocket(scope, receive, send), send)


async def websocket_endpoint(websocket: WebSocket, send: Send) -> None:
    services = services_of(websocket)
    settings = services.settings
    manager, sockets = services.sessions, services.sockets
    if manager is None or sockets is None:
        raise RuntimeError("the WebSocket endpoint needs the app's lifespan (sessions, sockets)")

    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    if PROTOCOL not in offered:
        await _deny(websocket, BadRequest(f"subprotocol '{PROTOCOL}' is required"))
        return
    if not _origin_allowed(websocket, settings.allowed_origins):
        origin = websocket.headers.get("origin", "")
        shown = origin[: origins.MAX_SHOWN]
        _log.warning("ws.origin_refused", origin=shown, setting=origins.SETTING)
        await _deny(websocket, Forbidden(origins.refused_hint(origin)))
        return
    token = _subprotocol_token(offered) or bearer_token(websocket.headers)
    try:
        principal = services.auth.authenticate(token)
    except Unauthorized as err:
        await _deny(websocket, err)
        return

    # Exactly the protocol, never the bearer entry: the token must not be echoed.
    await websocket.accept(subprotocol=PROTOCOL)
    # One full replay buffer (plus its resume.result and created frames) may arrive at once.
    replay_allowance = settings.replay_max_bytes + 4 * EVENT_OVERHEAD_BYTES
    outbox = Outbox(
        settings.outbox_max_bytes, replay_allowance, settings.outbox_drain_timeout_ms / 1000
    )
    protocol = SocketProtocol(
        settings=settings,
        manager=manager,
        orchestrator=services.orchestrator,
        router=services.router,
        principal=principal,
        outbox=outbox,
        metrics=services.metrics,
        key_limits=services.key_limits,
    )
    connection = SocketConnection(websocket, send, protocol, outbox)
    per_key = principal.id if settings.auth_enabled else None
    key_limits = services.key_limits
    admitted = sockets.add(connection, per_key)
    if admitted and per_key is not None:
        # Every instance's sockets of this key count (shared limits; locally a no-op).
        admitted = await key_limits.admit_socket(
            per_key, protocol.session_id, settings.max_sockets_per_key
        )
        if not admitted:
            sockets.remove(connection)
    if not admitted:
        _log.warning("ws.at_capacity", principal=principal.id, sockets=len(sockets))
        protocol.detach()
        await websocket.close(close_codes.TRY_AGAIN_LATER, close_codes.REASONS[1013])
        return
    try:
        protocol.start()
        lifecycle = services.lifecycle
        if lifecycle.draining:
            protocol.draining(_remaining_ms(lifecycle.drain_deadline))
            protocol.close(close_codes.SERVICE_RESTART)
        await connection.run(settings.idle_timeout_ms / 1000)
    finally:
        sockets.remove(connection)
        if per_key is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await key_limits.release_socket(per_key, protocol.session_id)
        services.metrics.socket_ended(
            server_code=connection.closed_with,
            frames_sent=outbox.frames_sent,
            merged=outbox.merged,
        )


class _AsgiRoute(WebSocketRoute):
    """A WebSocket route to a plain ASGI app (Starlette would wrap a function as
    ``func(websocket)`` with its exception handling around ``send``)."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app)
        self.app = app


def routes() -> list[WebSocketRoute]:
    return [_AsgiRoute(PATH, websocket_app)]


# --- handshake helpers -----------------------------------------------------------------


def _subprotocol_token(offered: list[str]) -> str | None:
    for entry in offered:
        if entry.startswith(_BEARER_PREFIX):
            return entry[len(_BEARER_PREFIX) :] or None
    return None


def _origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """No Origin (not a browser), a listed origin, ``*``, or the gateway's own origin."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    if origins.listed(origin, allowed):
        return True
    host = websocket.headers.get("host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


async def _deny(websocket: WebSocket, err: GatewayError) -> None:
    if "websocket.http.response" not in websocket.scope.get("extensions", {}):
        await websocket.close()  # the server can only say 403
        return
    body = orjson.dumps({"error": err.to_dict()})
    headers = {request_id.HEADER: request_id.new_request_id()}
    if err.http_status == 401:
        headers["www-authenticate"] = "Bearer"
    await websocket.send_denial_response(
        Response(body, status_code=err.http_status, media_type="application/json", headers=headers)
    )


def _remaining_ms(deadline: float | None) -> int:
    if deadline is None:
        return 0
    return max(0, int((deadline - anyio.current_time()) * 1000))
