"""``/api/v1/ui/chat``: the Vercel AI SDK's UI Message Stream, for an unmodified ``useChat``.

- ``POST /api/v1/ui/chat`` starts an answer as a session-manager response (the
  same machinery, producer and replay buffer as a WebSocket answer) in the
  conversation named by the chat ``id``, and streams it.
- ``GET /api/v1/ui/chat/{id}/stream`` (``useChat({resume: true})`` on mount)
  replays the chat's running answer from its start and follows it live, or
  answers ``204`` when none is running.
- ``POST`` or ``DELETE /api/v1/ui/chat/{id}/stop`` stops it at once: the upstream
  request is closed in the same event-loop turn and every stream of it ends with
  an ``abort`` part.

Auth is the HTTP API's (``Authorization: Bearer``), and so is the Origin policy
(CORS, ``GATEWAY_ALLOWED_ORIGINS``). Ids are scoped by principal: one caller
never sees or stops another's chat.
"""

from __future__ import annotations

import re
import time
import uuid

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.errors import GatewayError, ValidationFailed
from gateway.http._access import require_principal
from gateway.http._body import read_body
from gateway.http._responses import JSON
from gateway.http.openapi import describe
from gateway.relay import Relay
from gateway.services import Services, services_of
from gateway.telemetry import ChatSummary
from gateway.ui.request import CHAT_ID_PATTERN, parse_ui_body
from gateway.ui.stream import UISink, UIStreamResponse
from gateway.ws.producer import Producer
from gateway.ws.wire import as_gateway_error
from sessions import ResponseMeta, SessionError, SessionManager, SinkEvent

PATH = "/api/v1/ui/chat"
_CHAT_ID = re.compile(CHAT_ID_PATTERN)


async def ui_chat(request: Request) -> Response:
    principal = require_principal(request)
    services = services_of(request)
    manager = _manager(services)
    try:
        raw = await read_body(request, services.settings.max_request_bytes)
    except ClientDisconnect:
        return Response(status_code=400)  # gone before its request arrived whole
    body = parse_ui_body(raw)
    request_id = f"ui_{uuid.uuid4().hex}"
    summary = ChatSummary(
        request_id=request_id,
        transport="ui",
        principal=principal.id,
        model=body.model,
        stream=True,
        agent=body.agent,
        on_emit=services.metrics.observe_chat,
    )
    summary.extra["chat_id"] = body.id
    try:
        prepared = services.orchestrator.prepare(
            messages=body.chat_messages(),
            transport="ui",
            model=body.model,
            agent=body.agent,
            params=body.params(),
            options=body.options(),
            caller=principal,
        )
    except GatewayError as err:
        summary.failed(err)
        summary.emit()
        raise
    summary.resolved(prepared.route.requested_model, prepared.agent)
    primary = prepared.route.targets[0]
    sink = _sink(services, body.continued_message_id())
    session = manager.open_session(principal.id, sink)
    try:
        await manager.create_response(
            session,
            request_id,
            produce=Producer(
                Relay(services.router, prepared, summary, log_content=services.settings.log_content)
            ),
            meta=ResponseMeta(model=primary.model, provider=primary.provider, agent=prepared.agent),
            conversation_id=body.id,
        )
    except SessionError as exc:
        manager.close_session(session)
        raise as_gateway_error(exc) from None
    return UIStreamResponse(manager, session, sink, request_id)


@describe(
    summary="Resume the chat's running answer as a UI Message Stream",
    responses={"204": "no answer is running in this chat: nothing to resume"},
)
async def ui_resume(request: Request) -> Response:
    principal = require_principal(request)
    services = services_of(request)
    manager = _manager(services)
    chat_id = _chat_id(request)
    sink = _sink(services)
    session = manager.open_session(principal.id, sink)
    try:
        # Here or on another instance (shared sessions): a mirror follows it then.
        response = await manager.running_in_any(session, chat_id)
    except SessionError as exc:
        manager.close_session(session)
        raise as_gateway_error(exc) from None
    if response is not None:
        # Attaches and replays synchronously: nothing is missed or sent twice.
        result = await manager.resume(session, response.id, response.epoch, -1)
        if result.recovered:
            return UIStreamResponse(manager, session, sink, response.request_id)
    manager.close_session(session)
    return Response(status_code=204)


async def ui_stop(request: Request) -> Response:
    principal = require_principal(request)
    services = services_of(request)
    manager = _manager(services)
    chat_id = _chat_id(request)
    # The canceller's own session only hears the Done when nothing else is attached.
    session = manager.open_session(principal.id, _Discard())
    try:
        response = await manager.running_in_any(session, chat_id)
        stopped = False
        if response is not None:
            # Owned elsewhere: the cancel goes to its owner, which closes the upstream.
            started = time.perf_counter()
            await manager.cancel(session, response_id=response.id)
            # A Stop is a client's cancel like the socket's response.cancel: counted alike.
            services.metrics.cancelled("ui", time.perf_counter() - started)
            stopped = True
    except SessionError as exc:
        raise as_gateway_error(exc) from None
    finally:
        manager.close_session(session)
    return JSON({"id": chat_id, "stopped": stopped})


class _Discard:
    """The stop route's sink: the stop's answer is its status, not the events."""

    def push(self, event: SinkEvent) -> None:
        return None


def _manager(services: Services) -> SessionManager:
    manager = services.sessions
    if manager is None:
        raise RuntimeError("the UI stream routes need the app's lifespan (sessions)")
    return manager


def _sink(services: Services, message_id: str | None = None) -> UISink:
    settings = services.settings
    # A whole replay must fit, or a resume of a long answer would overflow at once.
    return UISink(settings.outbox_max_bytes + 2 * settings.replay_max_bytes, message_id)


def _chat_id(request: Request) -> str:
    chat_id: str = request.path_params["id"]
    if not _CHAT_ID.match(chat_id):
        raise ValidationFailed("id: chat id must be 1-128 characters without '/'", param="id")
    return chat_id


def routes() -> list[BaseRoute]:
    return [
        Route(PATH, ui_chat, methods=["POST"]),
        Route(PATH + "/{id}/stream", ui_resume, methods=["GET"]),
        Route(PATH + "/{id}/stop", ui_stop, methods=["POST", "DELETE"]),
    ]
