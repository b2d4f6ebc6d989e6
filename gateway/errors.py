"""The gateway's one error hierarchy.

Every error the gateway reports to a client is a :class:`GatewayError`. Each
subclass maps to exactly one wire error code (used in WebSocket ``error``
frames and in the OpenAI-shaped HTTP error body) and one HTTP status, so the
HTTP routes and the WebSocket endpoint never invent codes of their own.

Messages must never contain secrets (provider or client keys) or message
content: they are shown to clients and written to logs.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base class: carries the wire ``code``, OpenAI-style ``type`` and HTTP status."""

    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "server_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after_ms = retry_after_ms

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI-compatible error object (the value of ``{"error": ...}``)."""
        body: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "param": self.param,
        }
        return body


class InternalError(GatewayError):
    """A bug or an unexpected failure inside the gateway."""


# --- client errors -------------------------------------------------------------


class BadRequest(GatewayError):
    code = "bad_request"
    type = "invalid_request_error"
    http_status = 400


class InvalidMessage(BadRequest):
    """A WebSocket frame that is not valid JSON or not a known message shape."""

    code = "invalid_message"


class UnknownMessageType(BadRequest):
    code = "unknown_message_type"


class UnsupportedParameter(BadRequest):
    """A request parameter the resolved provider cannot honour: refused, never dropped."""

    code = "unsupported_parameter"


class ValidationFailed(GatewayError):
    code = "validation_error"
    type = "invalid_request_error"
    http_status = 422


class Unauthorized(GatewayError):
    code = "unauthorized"
    type = "authentication_error"
    http_status = 401


class Forbidden(GatewayError):
    code = "forbidden"
    type = "permission_error"
    http_status = 403


class UpgradeRequired(GatewayError):
    """A plain HTTP request to the WebSocket route."""

    code = "upgrade_required"
    type = "invalid_request_error"
    http_status = 426


class ModelNotFound(GatewayError):
    code = "model_not_found"
    type = "invalid_request_error"
    http_status = 404


class AgentNotFound(GatewayError):
    code = "agent_not_found"
    type = "invalid_request_error"
    http_status = 404


class ProviderNotFound(GatewayError):
    code = "provider_not_found"
    type = "invalid_request_error"
    http_status = 404


class ResponseNotFound(GatewayError):
    code = "response_not_found"
    type = "invalid_request_error"
    http_status = 404


class DuplicateRequest(GatewayError):
    code = "duplicate_request"
    type = "invalid_request_error"
    http_status = 409


class ConversationBusy(GatewayError):
    code = "conversation_busy"
    type = "invalid_request_error"
    http_status = 409


class MessageTooBig(GatewayError):
    code = "message_too_big"
    type = "invalid_request_error"
    http_status = 413


class RequestTooLarge(GatewayError):
    """An HTTP request body, or a chat request's messages, over the configured limits."""

    code = "request_too_large"
    type = "invalid_request_error"
    http_status = 413


class RateLimited(GatewayError):
    code = "rate_limited"
    type = "rate_limit_error"
    http_status = 429
    retryable = True


class TooManyResponses(GatewayError):
    code = "too_many_responses"
    type = "rate_limit_error"
    http_status = 429
    retryable = True


class ServerDraining(GatewayError):
    code = "server_draining"
    type = "server_error"
    http_status = 503
    retryable = True


class SessionsUnavailable(GatewayError):
    """The shared session store (Redis) cannot be reached: nothing new can start."""

    code = "sessions_unavailable"
    type = "server_error"
    http_status = 503
    retryable = True


class RelayedError(GatewayError):
    """An error another gateway instance reported for a response it ran (shared sessions):
    its wire code, type and retryability as that instance mapped them."""

    def __init__(self, message: str, *, code: str, type: str, retryable: bool) -> None:
        super().__init__(message)
        # Instance attributes shadow the ClassVars on purpose: they come from the owner.
        self.code = code  # type: ignore[misc]
        self.type = type  # type: ignore[misc]
        self.retryable = retryable  # type: ignore[misc]


# --- upstream errors -----------------------------------------------------------


class UpstreamError(GatewayError):
    """The provider failed. ``retryable`` is decided per instance from the cause.

    ``message`` is what the client sees: the provider and the kind of failure.
    ``detail`` is for the log only (it may name internal hosts, ports or paths):
    the request's summary line carries it next to the request id.
    """

    code = "upstream_error"
    type = "upstream_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        upstream_status: int | None = None,
        retryable: bool = False,
        retry_after_ms: int | None = None,
        detail: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param, retry_after_ms=retry_after_ms)
        self.provider = provider
        self.detail = detail
        self.upstream_status = upstream_status
        # Instance attribute shadows the ClassVar on purpose: retryability of an
        # upstream failure depends on its status, not on its class.
        self.retryable = retryable  # type: ignore[misc]


class UpstreamRateLimited(UpstreamError):
    code = "upstream_rate_limited"
    type = "rate_limit_error"
    http_status = 429


class UpstreamAuthFailed(UpstreamError):
    """The provider rejected the gateway's key: a configuration problem, never retried."""

    code = "upstream_auth_failed"
    http_status = 502


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    http_status = 503


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    http_status = 504


class UpstreamBadRequest(UpstreamError):
    """The provider rejected the request itself (HTTP 4xx upstream but auth, 404 and 429)."""

    code = "upstream_bad_request"
    type = "invalid_request_error"
    http_status = 400


class UpstreamModelNotFound(UpstreamBadRequest):
    """The provider does not know the model (HTTP 404 upstream: the gateway calls only
    its providers' chat endpoints, where that is what a 404 means). The same code as a
    name the gateway itself cannot route, so a client handles both alike."""

    code = "model_not_found"
    http_status = 404
