"""Sans-I/O protocol state of one socket: client frames in, session manager calls out.

:class:`SocketProtocol` never touches the socket. It is fed the text (or binary)
frames the transport received, answers through the socket's
:class:`~gateway.ws.outbox.Outbox`, and asks for the socket to be closed by
closing the outbox. Only :meth:`SocketProtocol.receive_text` is a coroutine,
because the session manager's create/resume/cancel are (a shared backend may ask
other instances; with the in-memory one they never suspend). A test can drive it
without a socket.

Errors never escape: each failure becomes one ``error`` frame naming the ids it
can (``event_id``, ``request_id``, ``response_id``), and only the limits in the
close-code table end the socket.

Limits are checked by what a message costs, after it is parsed (see the limits
section below): ``response.cancel`` and ``ping`` are never rate-limited.
"""

from __future__ import annotations

import math
import time
from typing import Any

import structlog

from gateway.agents import Orchestrator
from gateway.auth import Principal
from gateway.chat_input import to_messages, to_options
from gateway.errors import (
    GatewayError,
    InvalidMessage,
    MessageTooBig,
    RateLimited,
    ResponseNotFound,
)
from gateway.limits import KeyLimits, LocalKeyLimits, TokenBucket
from gateway.metrics import Metrics
from gateway.providers.base import ChatParams, ChatRequest
from gateway.relay import Relay
from gateway.router import Router
from gateway.settings import Settings
from gateway.telemetry import ChatSummary
from gateway.ws import close_codes, wire
from gateway.ws.messages import (
    PROTOCOL,
    Ping,
    Rejected,
    ResponseCancel,
    ResponseCreate,
    ResponseResume,
    SessionUpdate,
    WireParams,
    parse_client_message,
)
from gateway.ws.outbox import Outbox
from gateway.ws.producer import Producer
from sessions import DuplicateRequest, Reason, ResponseMeta, SessionError, SessionManager

_log = structlog.get_logger("gateway.ws")

# What spends the message-rate bucket: each starts upstream work or replays a buffer.
_COSTLY: frozenset[type] = frozenset({ResponseCreate, ResponseResume, SessionUpdate})


class SocketProtocol:
    """One socket's session: parses, rate-limits and dispatches client messages."""

    def __init__(
        self,
        *,
        settings: Settings,
        manager: SessionManager,
        orchestrator: Orchestrator,
        router: Router,
        principal: Principal,
        outbox: Outbox,
        metrics: Metrics | None = None,
        key_limits: KeyLimits | None = None,
    ) -> None:
        self._settings = settings
        self._key_limits = LocalKeyLimits() if key_limits is None else key_limits
        self._manager = manager
        self._orchestrator = orchestrator
        self._router = router
        self._outbox = outbox
        self._metrics = metrics
        self._bucket = TokenBucket(settings.messages_per_second, settings.message_burst)
        self._flood = TokenBucket(settings.flood_messages_per_second, settings.flood_message_burst)
        self._violations = 0  # rate_limited in a row
        self._caller = principal
        self.principal = principal.id
        self.session = manager.open_session(principal.id, outbox)
        self._model: str | None = None
        self._agent: str | None = None
        self._params: WireParams | None = None

    @property
    def session_id(self) -> str:
        return self.session.id

    # --- lifetime ---------------------------------------------------------------------

    def start(self) -> None:
        """Queue ``session.created``: the first frame of every session."""
        s = self._settings
        self._outbox.push_frame(
            {
                "type": "session.created",
                "session_id": self.session.id,
                "protocol": PROTOCOL,
                "heartbeat_interval_ms": s.heartbeat_interval_ms,
                "max_message_bytes": s.max_message_bytes,
                "resume_window_ms": s.resume_window_ms,
                "limits": {
                    "max_concurrent_responses": s.max_concurrent_responses,
                    "messages_per_second": s.messages_per_second,
                    "message_burst": s.message_burst,
                    "flood_messages_per_second": s.flood_messages_per_second,
                    "flood_message_burst": s.flood_message_burst,
                    "max_message_bytes": s.max_message_bytes,
                },
            }
        )

    def draining(self, deadline_ms: int) -> None:
        self._outbox.push_frame({"type": "server.draining", "deadline_ms": deadline_ms})

    def close(self, code: int) -> None:
        """Flush what is queued, then close the socket with ``code``."""
        self._outbox.close(code)

    def detach(self) -> None:
        """The socket is closing or gone: its responses follow the disconnect rule."""
        self._manager.close_session(self.session)

    # --- inbound ------------------------------------------------------------------------

    async def receive_text(self, text: str) -> None:
        if not self._within_size(text):
            return
        try:
            message = parse_client_message(text)
        except Rejected as rej:
            ids = {"event_id": rej.event_id, "request_id": rej.request_id}
            if self._flooding(**ids, response_id=rej.response_id):
                return
            self._error(rej.error, **ids, response_id=rej.response_id)
            return
        event_id = message.event_id
        request_id: str | None = getattr(message, "request_id", None)
        response_id: str | None = getattr(message, "response_id", None)
        if self._flooding(event_id, request_id, response_id):
            return
        if type(message) in _COSTLY and await self._rate_limited(event_id, request_id, response_id):
            return
        try:
            await self._dispatch(message)
        except Exception as exc:
            if not isinstance(exc, GatewayError | SessionError):
                _log.exception("ws.dispatch_failed", session_id=self.session.id)
            self._error(exc, event_id=event_id, request_id=request_id, response_id=response_id)

    def receive_bytes(self, data: bytes) -> None:
        # A binary frame is not read at all, so its refusal can name no ids.
        if self._within_size(data) and not self._flooding(None, None, None):
            self._error(InvalidMessage("binary frames are not supported: send JSON text"))

    # --- limits -----------------------------------------------------------------------
    #
    # Size first (nothing larger is parsed), then parsing, then the rates: a refusal
    # names the message it refuses, and the rate a message is charged depends on
    # what it costs. A Stop or a ping frees or costs nothing, so it never spends the
    # bucket that protects upstream work; every message counts against the flood
    # ceiling, whose breach ends the socket and everything it runs.

    def _within_size(self, data: str | bytes) -> bool:
        limit = self._settings.max_message_bytes
        # A character is at least one byte: only encode when the length is ambiguous.
        size = len(data)
        if size > limit or (
            isinstance(data, str) and size * 4 > limit and len(data.encode()) > limit
        ):
            # Not parsed, so no ids: the client learns the limit from session.created.
            self._error(MessageTooBig(f"message exceeds {limit} bytes"))
            self.close(close_codes.MESSAGE_TOO_BIG)
            return False
        return True

    def _flooding(
        self, event_id: str | None, request_id: str | None, response_id: str | None
    ) -> bool:
        wait_s = self._flood.take()
        if not wait_s:
            return False
        _log.warning("ws.flood_closed", session_id=self.session.id, principal=self.principal)
        self._error(
            RateLimited("too many messages: socket closed", retry_after_ms=_ms(wait_s)),
            event_id=event_id,
            request_id=request_id,
            response_id=response_id,
        )
        self._policy_close()
        return True

    async def _rate_limited(
        self, event_id: str | None, request_id: str | None, response_id: str | None
    ) -> bool:
        wait_s = self._bucket.take() or await self._key_wait()
        if not wait_s:
            # Violations count refusals in a row: a client getting messages through at
            # the allowed rate (several answers each retrying after retry_after_ms) is
            # not abusing anything. Spam is bounded by the flood ceiling anyway.
            self._violations = 0
            return False
        self._violations += 1
        self._error(
            RateLimited("too many messages", retry_after_ms=_ms(wait_s)),
            event_id=event_id,
            request_id=request_id,
            response_id=response_id,
        )
        if self._violations >= self._settings.max_rate_violations:
            self._policy_close()
        return True

    async def _key_wait(self) -> float:
        """The client key's own rate, over all its sockets (and instances, with Redis)."""
        s = self._settings
        if s.key_messages_per_second is None or not s.auth_enabled:
            return 0.0
        return await self._key_limits.take(
            self.principal, s.key_messages_per_second, s.key_message_burst
        )

    def _policy_close(self) -> None:
        """Close 1008, cancelling the socket's running responses first.

        Their ``response.done`` (``cancelled``/``policy_violation``) is flushed before
        the close frame. Left to the resume window, they would run on with nobody
        entitled to stop them.
        """
        self._manager.close_session(self.session, cancel=Reason.POLICY_VIOLATION)
        self.close(close_codes.POLICY_VIOLATION)

    async def _dispatch(
        self, message: ResponseCreate | ResponseCancel | ResponseResume | SessionUpdate | Ping
    ) -> None:
        if isinstance(message, ResponseCreate):
            await self._create(message)
        elif isinstance(message, ResponseCancel):
            await self._cancel(message)
        elif isinstance(message, ResponseResume):
            await self._resume(message)
        elif isinstance(message, SessionUpdate):
            self._update(message)
        else:
            self._outbox.push_frame({"type": "pong", "ts": message.ts})

    # --- messages -----------------------------------------------------------------------

    async def _create(self, message: ResponseCreate) -> None:
        model = message.model or self._model
        agent = message.agent or self._agent
        summary = ChatSummary(
            request_id=message.request_id,
            transport="ws",
            principal=self.principal,
            model=model,
            stream=True,
            agent=agent,
            on_emit=self._metrics.observe_chat if self._metrics else None,
        )
        summary.extra["session_id"] = self.session.id
        prepared = self._orchestrator.prepare(
            messages=to_messages(message.messages),
            transport="ws",
            model=model,
            agent=agent,
            params=_chat_params(self._params, message.params),
            options=to_options(
                tools=message.tools,
                tool_choice=message.tool_choice,
                parallel_tool_calls=message.parallel_tool_calls,
                response_format=message.response_format,
            ),
            caller=self._caller,
        )
        summary.resolved(prepared.route.requested_model, prepared.agent)
        primary = prepared.route.targets[0]
        relay = Relay(self._router, prepared, summary, log_content=self._settings.log_content)
        meta = ResponseMeta(model=primary.model, provider=primary.provider, agent=agent)
        try:
            # A known request_id re-attaches and replays its response: that burst is a replay.
            with self._outbox.replaying():
                await self._manager.create_response(
                    self.session,
                    message.request_id,
                    produce=Producer(relay),
                    meta=meta,
                    conversation_id=message.conversation_id,
                )
        except DuplicateRequest as exc:
            await self._refuse_duplicate(exc, message)

    async def _refuse_duplicate(self, exc: DuplicateRequest, message: ResponseCreate) -> None:
        """Refuse naming the response the request_id stands for, with its epoch: the
        client can resume (or cancel) it by these, as the refusal advises."""
        found = await self._manager.locate(self.session, message.request_id)
        if found is None:  # forgotten in between: nothing left to resume
            self._error(exc, event_id=message.event_id, request_id=message.request_id)
            return
        response_id, epoch = found
        body = wire.error_body(
            wire.as_gateway_error(exc),
            event_id=message.event_id,
            request_id=message.request_id,
            response_id=response_id,
        )
        body["epoch"] = epoch  # the one error frame that has one (rare: not the hot path)
        self._outbox.push_frame({"type": "error", "error": body})

    async def _cancel(self, message: ResponseCancel) -> None:
        started = time.perf_counter()
        await self._manager.cancel(
            self.session, response_id=message.response_id, request_id=message.request_id
        )
        # The cancel has cut the upstream off synchronously by the time it returns.
        if self._metrics is not None:
            self._metrics.cancelled("ws", time.perf_counter() - started)

    async def _resume(self, message: ResponseResume) -> None:
        with self._outbox.replaying():
            result = await self._manager.resume(
                self.session, message.response_id, message.epoch, message.last_seq
            )
        if self._metrics is not None:
            self._metrics.resume_attempted(result.recovered)
        if not result.recovered:
            # resume.result already says so; the error carries the client's event_id
            # for clients that correlate failures generically.
            self._error(
                _response_not_found(),
                event_id=message.event_id,
                response_id=message.response_id,
            )

    def _update(self, message: SessionUpdate) -> None:
        update = message.session
        fields = update.model_fields_set
        # Validate before changing anything: an update applies whole or not at all.
        if "model" in fields and update.model is not None:
            self._check_default_model(update.model)
        if "agent" in fields and update.agent is not None:
            self._orchestrator.agent(update.agent)
        if "model" in fields:
            self._model = update.model
        if "agent" in fields:
            self._agent = update.agent
        if "params" in fields:
            self._params = _updated_params(self._params, update.params)
        session: dict[str, Any] = {
            "model": self._model,
            "agent": self._agent,
            "params": None if self._params is None else self._params.model_dump(),
        }
        self._outbox.push_frame({"type": "session.updated", "session": session})

    def _check_default_model(self, model: str) -> None:
        """Refuse a default no request could use, as ``response.create`` would refuse it.

        Resolving checks the provider prefix only; the primary target's own check of a
        request asking for nothing is what refuses a name its provider does not have
        (a provider with a closed list of models; the others pass names through).
        """
        route = self._router.resolve(model)
        self._router.check(route, ChatRequest(model, ()), streamed=True)

    def _error(
        self,
        exc: BaseException,
        *,
        event_id: str | None = None,
        request_id: str | None = None,
        response_id: str | None = None,
    ) -> None:
        self._outbox.push_bytes(
            wire.error(exc, event_id=event_id, request_id=request_id, response_id=response_id)
        )


def _updated_params(current: WireParams | None, update: WireParams | None) -> WireParams | None:
    """``session.update``'s params over the session's, field by field: an omitted field
    stays, one set (``null`` too) replaces; ``"params": null`` clears them all."""
    if update is None:
        return None
    if current is None:
        return update
    return current.model_copy(
        update={name: getattr(update, name) for name in update.model_fields_set}
    )


def _chat_params(defaults: WireParams | None, given: WireParams | None) -> ChatParams | None:
    """Request params over the session's defaults, field by field."""
    if defaults is None and given is None:
        return None
    layers = [p for p in (defaults, given) if p is not None]
    merged: dict[str, Any] = {}
    for layer in layers:
        for name in ("temperature", "max_tokens", "top_p"):
            value = getattr(layer, name)
            if value is not None:
                merged[name] = value
        if layer.stop is not None:
            merged["stop"] = layer.stop_tuple
    return ChatParams(**merged)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _response_not_found() -> GatewayError:
    # "from another server" is true only of the in-memory backend; with Redis any
    # instance knows every response, so the message names what holds for both.
    return ResponseNotFound(
        "no such response to resume (unknown, expired, or held by another instance"
        " without a shared sessions backend)"
    )
