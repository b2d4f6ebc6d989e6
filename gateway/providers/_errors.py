"""Map an upstream HTTP failure to the gateway's error hierarchy (shared by all adapters)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import (
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.upstream.errors import ConnectError, TransportError, as_transport_error

# 408 request timeout, 409 lock conflicts, 429 rate limit, 5xx and Anthropic's 529 overloaded.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def error_for_status(
    provider: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """The gateway error for an upstream HTTP error status.

    ``message`` should be the provider's own error message (never echo request
    headers: they hold the key).
    """
    retry_after_ms = parse_retry_after(headers or {})
    retryable = status in RETRYABLE_STATUSES
    text = f"{provider} returned HTTP {status}: {message}"
    cls: type[UpstreamError]
    if status in (401, 403):
        cls = UpstreamAuthFailed
    elif status == 429:
        cls = UpstreamRateLimited
    elif status in (408, 504):
        cls = UpstreamTimeout
    elif status in (503, 529):
        cls = UpstreamUnavailable
    elif status == 404:
        cls = UpstreamModelNotFound
    elif 400 <= status < 500:
        cls = UpstreamBadRequest
    else:
        cls = UpstreamError
    return cls(
        text,
        provider=provider,
        upstream_status=status,
        retryable=retryable,
        retry_after_ms=retry_after_ms,
        param="model" if cls is UpstreamModelNotFound else None,
    )


def parse_retry_after(headers: Mapping[str, str]) -> int | None:
    """``retry-after-ms`` or ``retry-after`` (seconds; HTTP dates are ignored) in ms."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0, int(float(raw_ms)))
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is not None:
        try:
            return max(0, int(float(raw) * 1000))
        except ValueError:
            return None
    return None


def connection_error(
    provider: str, exc: BaseException, *, timed_out: bool = False
) -> UpstreamError:
    """The gateway error for a connection that failed or went silent: every provider's.

    Retryable in every case. An upstream that cannot be reached (refused, no route,
    DNS) is :class:`UpstreamUnavailable`, a timeout :class:`UpstreamTimeout`, the
    rest (lost mid-answer, malformed) :class:`UpstreamError`. The message names the
    provider and the kind of failure only; the original text, which may name an
    internal host, port or path, is kept as ``detail`` for the log.
    """
    transport = as_transport_error(exc) or TransportError(str(exc))
    detail = f"{type(exc).__name__}: {exc}"
    if transport is not exc:
        detail = f"{type(transport).__name__}: {transport} <- {detail}"
    cls: type[UpstreamError]
    if timed_out or transport.timed_out:
        cls, text = UpstreamTimeout, f"{provider} timed out ({transport.kind})"
    elif isinstance(transport, ConnectError):
        cls, text = UpstreamUnavailable, f"{provider} is unreachable ({transport.kind})"
    else:
        cls, text = UpstreamError, f"{provider} connection failed ({transport.kind})"
    return cls(text, provider=provider, retryable=True, detail=detail)
