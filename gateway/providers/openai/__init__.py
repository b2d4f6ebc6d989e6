"""OpenAI adapter (and any OpenAI-compatible server): Chat Completions via the official SDK.

The SDK builds, authenticates and sends the request, through the gateway's own
transport (:mod:`gateway.upstream`); the streamed answer is then read as raw
bytes, split into SSE events and parsed with orjson, because a typed SDK chunk
object per token is the most expensive thing on the hot path. The read timeout
is the between-tokens timeout (see :func:`gateway.providers._sdk.http_timeout`).
"""

from __future__ import annotations

from typing import Any

import openai

from gateway.providers._sdk import (
    SdkStream,
    decoded_events,
    endpoint,
    http_client,
    http_timeout,
    post_json,
)
from gateway.providers._support import Support
from gateway.providers.base import PASSTHROUGH_PARAMS, ChatRequest, Completion, ModelInfo
from gateway.providers.openai import decode
from gateway.providers.openai.errors import NAME as _NAME
from gateway.providers.openai.errors import translate
from gateway.providers.openai.request import build_body
from gateway.settings import Settings

# A local OpenAI-compatible server needs no key, but the SDK insists on one.
_PLACEHOLDER_KEY = "unused"

# The contract is modelled on Chat Completions: everything passes through, streamed
# or not (several choices and per-token logprobs too: the SSE encoder writes each
# choice's chunks; the WebSocket and UI protocols do not take these parameters), and
# the OpenAI-only parameters that act on the request alone (PASSTHROUGH_PARAMS).
SUPPORT = Support(
    _NAME,
    options=frozenset(
        {
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "seed",
            "user",
            "presence_penalty",
            "frequency_penalty",
            "reasoning_effort",
            "n",
            "logprobs",
            "top_logprobs",
            *PASSTHROUGH_PARAMS,
        }
    ),
    participant_names=True,
)


def create(settings: Settings) -> OpenAIProvider:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if key is None and settings.openai_base_url is None:
        raise ValueError("neither openai_api_key nor openai_base_url is set")
    kwargs: dict[str, Any] = {}
    if settings.openai_base_url is not None:
        kwargs["base_url"] = settings.openai_base_url
    client = openai.AsyncOpenAI(
        api_key=key or _PLACEHOLDER_KEY,
        max_retries=0,  # the router owns retries and fallbacks
        timeout=http_timeout(settings.timeouts),
        http_client=http_client(settings),
        **kwargs,
    )
    return OpenAIProvider(
        client,
        secret=key,
        probe_timeout_s=settings.health_probe_timeout_s,
        # OpenAI's reasoning models reject ``max_tokens``; compatible servers
        # (vLLM, llama.cpp, Ollama) have long understood only ``max_tokens``.
        max_tokens_field="max_tokens" if settings.openai_base_url else "max_completion_tokens",
    )


class OpenAIProvider:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        secret: str | None,
        probe_timeout_s: float,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        self._client = client
        self._chat_url = endpoint(client, "/chat/completions")
        self._secret = secret
        self._probe_timeout_s = probe_timeout_s
        self._max_tokens_field = max_tokens_field

    @property
    def name(self) -> str:
        return _NAME

    def check(self, request: ChatRequest, *, streamed: bool) -> None:
        SUPPORT.check(request, streamed=streamed)

    def stream(self, request: ChatRequest) -> SdkStream:
        body = self._body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        secret = self._secret
        options = request.options
        choices = options.n or 1
        logprobs = bool(options.logprobs)
        return SdkStream(
            self._client,
            self._chat_url,
            body,
            self.translate,
            lambda body: decoded_events(
                body, decode.StreamDecoder(secret, choices=choices, logprobs=logprobs), _NAME
            ),
        )

    async def complete(self, request: ChatRequest) -> Completion:
        raw = await post_json(self._client, self._chat_url, self._body(request), self.translate)
        return decode.completion(raw, request.model, self._secret)

    async def list_models(self) -> list[ModelInfo]:
        return await self._models(limit_s=None)

    async def probe(self) -> None:
        await self._models(limit_s=self._probe_timeout_s)

    async def aclose(self) -> None:
        await self._client.close()

    # --- internals ---

    async def _models(self, *, limit_s: float | None) -> list[ModelInfo]:
        kwargs: dict[str, Any] = {} if limit_s is None else {"timeout": limit_s}
        try:
            return [
                ModelInfo(id=model.id, owned_by=model.owned_by or _NAME)
                async for model in self._client.models.list(**kwargs)
            ]
        except Exception as exc:
            raise self.translate(exc) from None

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return build_body(request, max_tokens_field=self._max_tokens_field)

    def translate(self, exc: Exception) -> Exception:
        """The gateway error for an SDK or transport failure (others pass through)."""
        return translate(exc, self._secret)
