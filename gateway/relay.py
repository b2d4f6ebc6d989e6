"""The one path from the router to a client: routed stream -> events -> one encoder.

Every surface that streams an answer (the OpenAI SSE chunks, the WebSocket
session, next the UI Message Stream) runs its request through :class:`Relay`,
the only code in ``gateway/`` that opens ``router.stream``. The relay owns what
is the same for all of them, once: routing facts, the abort, time to first
token, usage, the finish -> status mapping, content logging and the summary
line. A surface is an :class:`Encoder`: it turns each provider event into its
wire format and says the ending its own way.

Adding a surface is one encoder. Adding an event type is one ``case`` per
encoder: each matches :data:`~gateway.providers.base.StreamEvent` exhaustively
and ends in ``assert_never``, so ``mypy --strict`` fails where a case is missing.

The rules kept where the two earlier paths disagreed:

- **Time to first token** is marked at the first event that carries output
  (anything but :class:`Finish`): what a user waits for before seeing something.
  A stream that only finishes has none.
- **Usage** (``Ending.usage``, the summary's token counts): the provider's
  :class:`Finish` says it; an answer that ends without one (cancelled, failed,
  cut short, shut down) reports what the upstream told before the cut
  (:class:`UsageSoFar`: Anthropic's input tokens), and ``None`` for a count it
  never told -- unknown, not 0 (OpenAI and Ollama count only at the end).
- **Status** (``Ending.status``, the summary's ``status``): ``completed`` ("ok")
  for a provider finish, ``incomplete`` for ``length``, for a stream cut short
  without a finish and for a shutdown; ``failed`` ("error") for an upstream or
  internal error and for a provider finish ``error``; ``cancelled`` when the
  client side stopped it (hang-up, Stop, disconnect).

The per-token path is the encoder's ``event`` and nothing else: no clock read,
no cancel scope, no allocation of the relay's own (an encoder that writes to
an async sink returns the awaitable, one that writes synchronously returns
``None``, so a synchronous surface pays no coroutine per token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol, assert_never

import anyio
import anyio.lowlevel
import structlog

from gateway.agents import Prepared
from gateway.errors import GatewayError, InternalError, ServerDraining, UpstreamError
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
from gateway.router import RoutedStream, Router, Target
from gateway.telemetry import ChatSummary
from sessions import Reason, Status

_log = structlog.get_logger("gateway.relay")

# How long an ending may take to write once the relay was cancelled from outside
# (shutdown): the client is told, but a client that does not read is not waited for.
ENDING_GRACE_S: Final = 1.0

# How a provider's finish reason ends an answer (default: completed).
_FINISH_STATUS: Final[dict[str, tuple[Status, str | None]]] = {
    "length": (Status.INCOMPLETE, Reason.MAX_TOKENS),
    "error": (Status.FAILED, Reason.UPSTREAM_ERROR),
}

# The summary's transport-neutral status for each ending.
SUMMARY_STATUS: Final[dict[Status, str]] = {
    Status.COMPLETED: "ok",
    Status.FAILED: "error",
    Status.CANCELLED: "cancelled",
    Status.INCOMPLETE: "incomplete",
}

Encode = Callable[[StreamEvent], Awaitable[object] | None]


@dataclass(frozen=True, slots=True)
class Ending:
    """How an answer ended, decided once by the relay.

    ``finish`` is the provider's :class:`Finish` when one arrived. ``error`` is set
    whenever the client must be told that the answer broke off: an upstream or
    internal failure, a stream cut short without a finish, a shutdown. It is
    ``None`` for a finish (even ``length`` or ``error``, which the provider said
    itself) and for a stop by the client side, which needs no telling.
    ``usage_so_far`` is what the upstream had reported (:class:`UsageSoFar`) when
    the answer ended without a finish whose usage says it all; read :attr:`usage`.
    """

    status: Status
    reason: str | None = None
    finish: Finish | None = None
    error: GatewayError | None = None
    usage_so_far: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        """The token counts known at the end: the finish's, else what was reported
        before the cut; ``None`` (or ``None`` counts) where nothing was told."""
        finish = self.finish
        if finish is not None and finish.usage is not None:
            return finish.usage
        return self.usage_so_far


class Encoder(Protocol):
    """One surface's wire format behind the relay.

    The relay calls :meth:`opened` once the routed stream has answered (its
    first event is in hand), :meth:`event` for every event in order, then
    :meth:`ended` exactly once, whatever happened -- also when the stream never
    opened (then without :meth:`opened`), and when the relay was cancelled
    (then shielded, within :data:`ENDING_GRACE_S`).
    """

    async def opened(self, target: Target) -> None:
        """The answer starts (e.g. the 200 and the SSE headers go out)."""
        ...

    def event(self, event: StreamEvent) -> Awaitable[object] | None:
        """Encode one event: ``match`` on it, ``assert_never`` in the last case.

        Returns the awaitable of an asynchronous write, or ``None`` when the
        event was handled synchronously. Looked up once per answer, called per token.
        """
        ...

    async def ended(self, ending: Ending) -> Ending:
        """Say the ending on the wire. Returns the ending as the surface knows it
        (a surface whose answer was ended from outside may know the reason better);
        the summary line records what it returns."""
        ...


class Relay:
    """One prepared request, routed and relayed into one encoder; reusable never."""

    __slots__ = (
        "_aborted",
        "_log_content",
        "_prepared",
        "_router",
        "_stream",
        "_usage",
        "summary",
    )

    def __init__(
        self,
        router: Router,
        prepared: Prepared,
        summary: ChatSummary,
        *,
        log_content: bool = False,
    ) -> None:
        self._router = router
        self._prepared = prepared
        self.summary = summary
        self._log_content = log_content
        self._stream: RoutedStream | None = None  # while the router stream is open
        self._aborted = False
        self._usage: Usage | None = None  # the stream's UsageSoFar, once it came

    def abort(self) -> None:
        """The client side stopped the answer (hang-up, Stop, expiry, drain deadline).

        Synchronous and never raises: cuts the upstream connection off in this
        very event-loop turn (a no-op before the stream opened or after it
        closed); the caller's cancellation then unwinds :meth:`run`, whose ending
        is ``cancelled`` and says nothing more to the client. Bench: cancel ->
        upstream closed p99 at 20 ms/token 3.6 ms (WebSocket cancel and SSE hang-up,
        bench/RESULTS.md of 2026-12-04; figures of the change:
        ``gateway.upstream.connection.shutdown_now``).
        """
        self._aborted = True
        stream = self._stream
        if stream is not None:
            stream.abort()

    async def run(self, encoder: Encoder, *, yield_first: bool = False) -> Ending:
        """Relay the answer into ``encoder``; returns its ending.

        Upstream and internal failures end the answer (``ended`` with the error)
        and are not raised; cancellation is, after the encoder said its ending.
        ``yield_first``: pass through the event loop once before routing (a caller
        that is not a task of its own lets running streams' tokens go out first).
        Bench (bench/README.md optimisation log, c=100): with the transport's yield,
        task steps over 0.5 ms in 8 s went from 288 to 216-305 (SSE).
        """
        summary = self.summary
        prepared = self._prepared
        transcript: _Transcript | None = None
        if self._log_content:
            transcript = _Transcript(encoder.event)
            if summary.prompt is None:
                summary.prompt = _last_user_text(prepared)
        ending: Ending | None = None
        try:
            try:
                if yield_first:
                    await anyio.lowlevel.checkpoint()
                async with self._router.stream(prepared.route, prepared.request) as events:
                    self._stream = events
                    summary.routed(events.target.provider, events.target.model)
                    await encoder.opened(events.target)
                    encode = encoder.event if transcript is None else transcript
                    finish = await self._pump(events, encode, summary)
                self._stream = None
                ending = _finished(finish, self._usage)
            except GatewayError as err:
                # Without its traceback: the ending outlives this frame, which it
                # would otherwise keep (a reference cycle per failed answer). Bench:
                # see gateway.upstream.exchange._fresh.
                ending = Ending(
                    Status.FAILED,
                    Reason.UPSTREAM_ERROR,
                    error=err.with_traceback(None),
                    usage_so_far=self._usage,
                )
            except Exception:
                _log.exception("relay.failed", request_id=summary.request_id)
                ending = Ending(
                    Status.FAILED,
                    Reason.UPSTREAM_ERROR,
                    error=InternalError("internal error"),
                    usage_so_far=self._usage,
                )
            ending = await encoder.ended(ending)
            return ending
        finally:
            self._stream = None
            if ending is None:
                # Cancelled: by the client side (it aborted first), or from outside.
                ending = await self._cancelled(encoder)
            if transcript is not None:
                summary.completion = "".join(transcript.parts)
            _summarise(summary, ending)
            summary.emit()

    async def _cancelled(self, encoder: Encoder) -> Ending:
        if self._aborted:
            ending = Ending(Status.CANCELLED, Reason.CLIENT_CANCELLED, usage_so_far=self._usage)
        else:
            ending = Ending(
                Status.INCOMPLETE,
                Reason.SERVER_SHUTDOWN,
                error=ServerDraining("the server is shutting down; the answer was cut short"),
                usage_so_far=self._usage,
            )
        with anyio.CancelScope(shield=True), anyio.move_on_after(ENDING_GRACE_S):
            try:
                ending = await encoder.ended(ending)
            except Exception:  # the client may be gone already: the ending stays as decided
                _log.debug("relay.ending_not_sent", request_id=self.summary.request_id)
        return ending

    async def _pump(
        self, events: RoutedStream, encode: Encode, summary: ChatSummary
    ) -> Finish | None:
        """Every event into ``encode``; the provider's ``Finish`` if the stream ended with one.

        The per-token path: no clock read, cancel scope or coroutine of its own (a
        synchronous encoder returns ``None``). Bench: the ``--quick`` run right after
        the relay landed (bench/README.md optimisation log) had gateway CPU per paced
        token at c=100 of 78.7 (WebSocket) and 58.5 µs (SSE), 0.14-0.92x the baseline.
        """
        event: StreamEvent | None = None
        async for event in events:
            if isinstance(event, UsageSoFar):
                # The contract puts it before the first output: only looked for here.
                self._usage = event.usage
            elif type(event) is not Finish:
                summary.mark_first_token()
                pending = encode(event)
                if pending is not None:
                    await pending
                break
            pending = encode(event)
            if pending is not None:
                await pending
        else:
            return event if isinstance(event, Finish) else None
        # From the first output on, the loop does nothing but encode.
        async for event in events:
            pending = encode(event)
            if pending is not None:
                await pending
        return event if isinstance(event, Finish) else None


def _finished(finish: Finish | None, usage_so_far: Usage | None) -> Ending:
    if finish is None:
        # The provider contract promises a Finish: a stream without one was cut short.
        return Ending(
            Status.INCOMPLETE,
            Reason.UPSTREAM_ERROR,
            error=UpstreamError("the upstream ended the answer before finishing it"),
            usage_so_far=usage_so_far,
        )
    status, reason = _FINISH_STATUS.get(finish.reason, (Status.COMPLETED, None))
    if finish.usage is not None:
        usage_so_far = None  # the finish says it all
    return Ending(status, reason, finish, usage_so_far=usage_so_far)


def _summarise(summary: ChatSummary, ending: Ending) -> None:
    summary.status = SUMMARY_STATUS[ending.status]
    finish = ending.finish
    if finish is not None:
        summary.finish_reason = finish.reason
    summary.usage(ending.usage)
    error = ending.error
    if error is not None:
        summary.record_error(error)
    summary.extra["reason"] = ending.reason


class _Transcript:
    """The answer's text for the summary (``settings.log_content``), around the encoder."""

    __slots__ = ("_encode", "parts")

    def __init__(self, encode: Encode) -> None:
        self._encode = encode
        self.parts: list[str] = []

    def __call__(self, event: StreamEvent) -> Awaitable[object] | None:
        match event:
            case TextDelta() | RefusalDelta():
                self.parts.append(event.text)
            case ReasoningDelta() | ToolCallStart() | ToolCallDelta() | UsageSoFar() | Finish():
                pass  # the summary logs the answer's text only
            case _:
                assert_never(event)
        return self._encode(event)


def _last_user_text(prepared: Prepared) -> str | None:
    return next((m.text for m in reversed(prepared.request.messages) if m.role == "user"), None)
