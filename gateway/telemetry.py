"""One summary log line per chat request, the same shape for HTTP and WebSocket.

The summary carries ids, routing, timings and token counts, never message content
(unless ``settings.log_content``) and never secrets. It is a plain mutable record
filled in as the request progresses and emitted once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.errors import GatewayError
from gateway.providers.base import Usage

_log = structlog.get_logger("gateway.chat")


@dataclass(slots=True)
class ChatSummary:
    request_id: str
    transport: str  # "http" | "ws"
    principal: str
    model: str | None
    stream: bool
    agent: str | None = None
    provider: str | None = None
    target_model: str | None = None
    status: str = "ok"  # ok | error | cancelled
    error_code: str | None = None
    # Log-only detail of an upstream failure (hosts, ports): never sent to clients.
    error_detail: str | None = None
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt: str | None = None  # only when settings.log_content
    completion: str | None = None  # only when settings.log_content
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    # Told of the finished summary (the metrics); None in tests that build one by hand.
    on_emit: Callable[[ChatSummary], None] | None = None

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def resolved(self, model: str, agent: str | None) -> None:
        """What the request resolved to: the name it asked for, and the agent that runs
        (the transport's default when the request named none)."""
        self.model = model
        self.agent = agent

    def routed(self, provider: str, target_model: str) -> None:
        self.provider = provider
        self.target_model = target_model

    def usage(self, usage: Usage | None) -> None:
        if usage is not None:
            self.input_tokens = usage.input_tokens
            self.output_tokens = usage.output_tokens

    def failed(self, error: GatewayError) -> None:
        self.status = "error"
        self.record_error(error)

    def record_error(self, error: GatewayError) -> None:
        """The error's code, its log-only detail, and the provider that failed when the
        answer never got as far as being routed to one (a refusal on opening)."""
        self.error_code = error.code
        # Log-only detail of an upstream failure (hosts, ports): never sent to clients.
        self.error_detail = getattr(error, "detail", None)
        if self.provider is None:
            self.provider = getattr(error, "provider", None)

    def cancelled(self) -> None:
        if self.status == "ok":
            self.status = "cancelled"
            self.finish_reason = self.finish_reason or "cancelled"

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def fields(self) -> dict[str, Any]:
        now = time.perf_counter()
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "transport": self.transport,
            "principal": self.principal,
            "model": self.model,
            "agent": self.agent,
            "provider": self.provider,
            "target_model": self.target_model,
            "status": self.status,
            "error_code": self.error_code,
            "error_detail": self.error_detail,
            "stream": self.stream,
            "finish_reason": self.finish_reason,
            "ttft_ms": _ms(self.first_token_at - self.started)
            if self.first_token_at is not None
            else None,
            "duration_ms": _ms(now - self.started),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.completion is not None:
            out["completion"] = self.completion
        out.update(self.extra)
        return out

    def emit(self) -> None:
        _log.info("chat.request", **self.fields())
        if self.on_emit is not None:
            self.on_emit(self)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
