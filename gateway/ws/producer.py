"""The coroutine the session manager runs for one response: router -> ``emit_delta``.

It is the only code on the per-token path between the provider and the outbox:
one type check and one ``emit_delta`` per token, nothing else. Everything once
per response (routing facts, time to first token, usage, the summary log line)
happens before the first token or after the last.
"""

from __future__ import annotations

import structlog

from gateway.agents import Prepared
from gateway.errors import GatewayError
from gateway.providers.base import Finish, TextDelta
from gateway.router import Router
from gateway.telemetry import ChatSummary
from gateway.ws.wire import as_gateway_error
from sessions import FinishInfo, Reason, Response, Status

_log = structlog.get_logger("gateway.ws")

# How a provider's finish reason ends a response (default: completed).
_FINISH_STATUS: dict[str, tuple[Status, str | None]] = {
    "length": (Status.INCOMPLETE, Reason.MAX_TOKENS),
    "error": (Status.FAILED, Reason.UPSTREAM_ERROR),
}

# The summary's transport-neutral status for each response status.
_SUMMARY_STATUS: dict[str, str] = {
    Status.COMPLETED: "ok",
    Status.FAILED: "error",
    Status.CANCELLED: "cancelled",
    Status.INCOMPLETE: "incomplete",
}


class Producer:
    """``await Producer(...)(response)`` streams one prepared request into ``response``."""

    __slots__ = ("_prepared", "_router", "_summary")

    def __init__(self, router: Router, prepared: Prepared, summary: ChatSummary) -> None:
        self._router = router
        self._prepared = prepared
        self._summary = summary

    async def __call__(self, response: Response) -> FinishInfo:
        summary = self._summary
        summary.extra["response_id"] = response.id
        info: FinishInfo | None = None
        error: BaseException | None = None
        try:
            prepared = self._prepared
            async with self._router.stream(prepared.route, prepared.request) as events:
                # A forced end (cancel, disconnect, expiry) cuts the upstream off at once.
                response.on_abort(events.abort)
                # Entering returned once the first event arrived.
                summary.mark_first_token()
                summary.routed(events.target.provider, events.target.model)
                emit = response.emit_delta
                finish: Finish | None = None
                async for event in events:
                    if type(event) is TextDelta:
                        emit(event.text)
                    elif type(event) is Finish:
                        finish = event
            info = _finish_info(finish)
            return info
        except Exception as exc:
            error = exc
            if not isinstance(exc, GatewayError):
                _log.exception("ws.producer_failed", response_id=response.id)
            raise
        finally:
            _emit_summary(summary, response, info, error)
            # A raised exception's traceback keeps this frame, locals included: holding
            # the exception here too would make a reference cycle, and keep the whole
            # answer alive until the cyclic garbage collector came by.
            error = None


def _finish_info(finish: Finish | None) -> FinishInfo:
    if finish is None:
        # The provider contract promises a Finish; a stream without one was cut short.
        return FinishInfo(
            finish_reason=None, status=Status.INCOMPLETE, reason=Reason.UPSTREAM_ERROR
        )
    status, reason = _FINISH_STATUS.get(finish.reason, (Status.COMPLETED, None))
    usage = finish.usage
    return FinishInfo(
        finish_reason=finish.reason,
        status=status,
        reason=reason,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
    )


def _emit_summary(
    summary: ChatSummary,
    response: Response,
    info: FinishInfo | None,
    error: BaseException | None,
) -> None:
    done = response.done
    # The manager ends cancelled/expired/drained responses before cancelling us, so
    # their Done already exists; a normal end or a failure is only known here.
    if done is not None:
        status, reason = done.status, done.reason
        summary.finish_reason = done.finish_reason or summary.finish_reason
    elif info is not None:
        status, reason = info.status, info.reason
        summary.finish_reason = info.finish_reason
        summary.input_tokens = info.input_tokens
        summary.output_tokens = info.output_tokens
    elif error is not None:
        status, reason = Status.FAILED, Reason.UPSTREAM_ERROR
    else:
        status, reason = Status.INCOMPLETE, Reason.SERVER_SHUTDOWN
    summary.status = _SUMMARY_STATUS[status]
    if error is not None:
        err = error if isinstance(error, GatewayError) else as_gateway_error(error)
        summary.error_code = err.code
        summary.error_detail = getattr(err, "detail", None)
    if summary.input_tokens is None:
        summary.input_tokens = response.usage.input_tokens
    if summary.output_tokens is None:
        summary.output_tokens = response.usage.output_tokens
    summary.extra["reason"] = reason
    summary.extra["last_seq"] = response.seq
    summary.emit()
