"""OpenAI adapter (and any OpenAI-compatible server): Chat Completions via the official SDK.

The SDK builds, authenticates and sends the request, through the gateway's own
transport (:mod:`gateway.upstream`); the streamed answer is then read as raw
bytes, split into SSE events and parsed with orjson, because a typed SDK chunk
object per token is the most expensive thing on the hot path. The read timeout
is the between-tokens timeout (see :func:`gateway.providers._sdk.http_timeout`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import openai
import orjson

from gateway import upstream
from gateway.errors import UpstreamError
from gateway.providers._errors import connection_error, error_for_status
from gateway.providers._sdk import (
    SdkStream,
    endpoint,
    http_client,
    http_timeout,
    post_json,
    redact,
    stream_error,
)
from gateway.providers._sse import SseDecoder
from gateway.providers.base import (
    ChatRequest,
    Completion,
    Finish,
    FinishReason,
    ModelInfo,
    StreamEvent,
    TextDelta,
    Usage,
)
from gateway.settings import Settings

_NAME = "openai"
# A local OpenAI-compatible server needs no key, but the SDK insists on one.
_PLACEHOLDER_KEY = "unused"

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


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

    def stream(self, request: ChatRequest) -> SdkStream:
        body = self._body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        secret = self._secret
        return SdkStream(
            self._client,
            self._chat_url,
            body,
            self.translate,
            lambda body: _events(body, secret),
        )

    async def complete(self, request: ChatRequest) -> Completion:
        raw = await post_json(self._client, self._chat_url, self._body(request), self.translate)
        data = _parse(raw)
        if "error" in data:
            raise _error_event(data["error"], self._secret)
        choices = data.get("choices") or [{}]
        message = choices[0].get("message") or {}
        return Completion(
            text=message.get("content") or "",
            finish_reason=_FINISH_REASONS.get(choices[0].get("finish_reason") or "", "stop"),
            usage=_usage(data.get("usage")),
            model=data.get("model") or request.model,
        )

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
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        params = request.params
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.top_p is not None:
            body["top_p"] = params.top_p
        if params.max_tokens is not None:
            body[self._max_tokens_field] = params.max_tokens
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def translate(self, exc: Exception) -> Exception:
        """The gateway error for an SDK or transport failure (others pass through)."""
        if isinstance(exc, openai.APIStatusError):
            return error_for_status(
                _NAME,
                exc.status_code,
                redact(_status_message(exc), self._secret),
                exc.response.headers,
            )
        if isinstance(exc, openai.APIConnectionError):
            # The SDK's own message is bland; the transport error behind it says what failed.
            return connection_error(
                _NAME,
                exc,
                timed_out=isinstance(exc, openai.APITimeoutError),
            )
        if isinstance(exc, upstream.TransportError):
            return connection_error(_NAME, exc)
        return exc


async def _events(
    body: upstream.UpstreamStream, secret: str | None
) -> AsyncGenerator[StreamEvent, None]:
    """The normalised events of one response body: the per-token loop."""
    reason: str | None = None
    usage: Usage | None = None
    done = False
    loads = orjson.loads
    read = body.read
    decoder = SseDecoder()
    try:
        while not done:
            piece = await read()
            if not piece:
                break
            for _, data in decoder.feed(piece):
                if data == b"[DONE]":
                    done = True
                    break
                chunk = loads(data)
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        text = delta.get("content")
                        if text:
                            yield TextDelta(text)
                    finish = choice.get("finish_reason")
                    if finish:
                        reason = finish
                elif "error" in chunk:
                    raise _error_event(chunk["error"], secret)
                counts = chunk.get("usage")
                if counts:
                    usage = _usage(counts)
    except upstream.TransportError as exc:
        raise connection_error(_NAME, exc) from None
    except (orjson.JSONDecodeError, AttributeError, IndexError, KeyError):
        raise UpstreamError(
            "openai sent a malformed stream chunk", provider=_NAME, retryable=True
        ) from None
    if not done and reason is None:
        raise UpstreamError(
            "openai stream ended before it finished", provider=_NAME, retryable=True
        )
    yield Finish(_FINISH_REASONS.get(reason or "", "stop"), usage)
    await body.drain()


def _usage(counts: Any) -> Usage | None:
    if not counts:
        return None
    return Usage(counts.get("prompt_tokens"), counts.get("completion_tokens"))


def _error_event(error: Any, secret: str | None) -> UpstreamError:
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code")
        message = str(error.get("message") or kind or "unknown error")
    else:
        kind, message = None, str(error)
    return stream_error(_NAME, kind if isinstance(kind, str) else None, redact(message, secret))


def _status_message(exc: openai.APIStatusError) -> str:
    # The SDK stores the JSON body's ``error`` object (or the raw text) as ``body``.
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    elif isinstance(body, str) and body:
        return body[:200]
    return "no error message"


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("openai sent malformed JSON", provider=_NAME) from None
    if not isinstance(data, dict):
        raise UpstreamError("openai sent an unexpected JSON shape", provider=_NAME)
    return data
