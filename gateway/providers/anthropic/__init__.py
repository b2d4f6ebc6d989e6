"""Anthropic adapter: the Messages API via the official SDK.

The SDK builds, authenticates and sends the request, through the gateway's own
transport (:mod:`gateway.upstream`); the streamed answer is read as raw bytes,
split into SSE events (``event:`` + ``data:``) and parsed with orjson, and only
``content_block_delta`` events are decoded at all on the per-token path. The
read timeout is the between-tokens timeout.
"""

from __future__ import annotations

from typing import Any

import anthropic

from gateway.providers._sdk import (
    SdkStream,
    decoded_events,
    endpoint,
    http_client,
    http_timeout,
    post_json,
)
from gateway.providers._support import Support, refuse
from gateway.providers.anthropic import decode
from gateway.providers.anthropic.errors import NAME as _NAME
from gateway.providers.anthropic.errors import translate
from gateway.providers.anthropic.request import DEFAULT_MAX_TOKENS, THINKING_BUDGETS, build_body
from gateway.providers.base import ChatRequest, Completion, ModelInfo
from gateway.settings import Settings

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicProvider", "create"]

# A proxy in front of Anthropic may need no key, but the SDK insists on one.
_PLACEHOLDER_KEY = "unused"

SUPPORT = Support(
    _NAME,
    options=frozenset(
        {
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "user",
            "reasoning_effort",
        }
    ),
)


def create(settings: Settings) -> AnthropicProvider:
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    if key is None and settings.anthropic_base_url is None:
        raise ValueError("neither anthropic_api_key nor anthropic_base_url is set")
    client = anthropic.AsyncAnthropic(
        api_key=key or _PLACEHOLDER_KEY,
        base_url=settings.anthropic_base_url,
        max_retries=0,  # the router owns retries and fallbacks
        timeout=http_timeout(settings.timeouts),
        http_client=http_client(settings),
    )
    return AnthropicProvider(
        client,
        secret=key,
        probe_timeout_s=settings.health_probe_timeout_s,
        default_max_tokens=settings.anthropic_default_max_tokens,
    )


class AnthropicProvider:
    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        secret: str | None,
        probe_timeout_s: float,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self._client = client
        self._default_max_tokens = default_max_tokens
        self._messages_url = endpoint(client, "/v1/messages")
        self._secret = secret
        self._probe_timeout_s = probe_timeout_s

    @property
    def name(self) -> str:
        return _NAME

    def check(self, request: ChatRequest, *, streamed: bool) -> None:
        SUPPORT.check(request, streamed=streamed)
        options = request.options
        effort = options.reasoning_effort
        if effort is not None and effort not in THINKING_BUDGETS:
            raise refuse(_NAME, "reasoning_effort", f"has no thinking level '{effort}'")
        fmt = options.response_format
        if fmt is not None and fmt.type == "json_object" and options.tools:
            # json_object is a forced answer tool here: it cannot share the turn with tools.
            raise refuse(_NAME, "response_format", "supports json_object only without tools")

    def stream(self, request: ChatRequest) -> SdkStream:
        body = self._body(request)
        body["stream"] = True
        secret = self._secret
        return SdkStream(
            self._client,
            self._messages_url,
            body,
            self.translate,
            lambda body: decoded_events(body, decode.StreamDecoder(secret), _NAME),
        )

    async def complete(self, request: ChatRequest) -> Completion:
        raw = await post_json(self._client, self._messages_url, self._body(request), self.translate)
        return decode.completion(raw, request.model, self._secret)

    async def list_models(self) -> list[ModelInfo]:
        return await self._models(limit_s=None)

    async def probe(self) -> None:
        await self._models(limit_s=self._probe_timeout_s)

    async def aclose(self) -> None:
        await self._client.close()

    # --- internals ---

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return build_body(request, default_max_tokens=self._default_max_tokens)

    async def _models(self, *, limit_s: float | None) -> list[ModelInfo]:
        kwargs: dict[str, Any] = {"limit": 1000}
        if limit_s is not None:
            kwargs["timeout"] = limit_s
        try:
            return [
                ModelInfo(id=model.id, owned_by=_NAME, description=model.display_name or None)
                async for model in self._client.models.list(**kwargs)
            ]
        except Exception as exc:
            raise self.translate(exc) from None

    def translate(self, exc: Exception) -> Exception:
        """The gateway error for an SDK or transport failure (others pass through)."""
        return translate(exc, self._secret)
