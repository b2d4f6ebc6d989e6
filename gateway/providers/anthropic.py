"""Anthropic adapter: the Messages API via the official SDK.

The SDK builds, authenticates and sends the request, through the gateway's own
transport (:mod:`gateway.upstream`); the streamed answer is read as raw bytes,
split into SSE events (``event:`` + ``data:``) and parsed with orjson, and only
``content_block_delta`` events are decoded at all on the per-token path. The
read timeout is the between-tokens timeout.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
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

_NAME = "anthropic"
# A proxy in front of Anthropic may need no key, but the SDK insists on one.
_PLACEHOLDER_KEY = "unused"
# The Messages API requires max_tokens; used when the caller sets none.
DEFAULT_MAX_TOKENS = 1024

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


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
    return AnthropicProvider(client, secret=key, probe_timeout_s=settings.health_probe_timeout_s)


class AnthropicProvider:
    def __init__(
        self, client: anthropic.AsyncAnthropic, *, secret: str | None, probe_timeout_s: float
    ) -> None:
        self._client = client
        self._messages_url = endpoint(client, "/v1/messages")
        self._secret = secret
        self._probe_timeout_s = probe_timeout_s

    @property
    def name(self) -> str:
        return _NAME

    def stream(self, request: ChatRequest) -> SdkStream:
        body = _body(request)
        body["stream"] = True
        secret = self._secret
        return SdkStream(
            self._client,
            self._messages_url,
            body,
            self.translate,
            lambda body: _events(body, secret),
        )

    async def complete(self, request: ChatRequest) -> Completion:
        raw = await post_json(self._client, self._messages_url, _body(request), self.translate)
        data = _parse(raw)
        if data.get("type") == "error":
            raise _error_event(data.get("error"), self._secret)
        text = "".join(
            block.get("text") or ""
            for block in data.get("content") or ()
            if block.get("type") == "text"
        )
        counts = data.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=_STOP_REASONS.get(data.get("stop_reason") or "", "stop"),
            usage=Usage(counts.get("input_tokens"), counts.get("output_tokens")),
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
        if isinstance(exc, anthropic.APIStatusError):
            message = exc.api_message or "no error message"
            return error_for_status(
                _NAME, exc.status_code, redact(message, self._secret), exc.response.headers
            )
        if isinstance(exc, anthropic.APIConnectionError):
            # The SDK's own message is bland; the transport error behind it says what failed.
            return connection_error(
                _NAME,
                exc,
                timed_out=isinstance(exc, anthropic.APITimeoutError),
            )
        if isinstance(exc, upstream.TransportError):
            return connection_error(_NAME, exc)
        return exc


def _body(request: ChatRequest) -> dict[str, Any]:
    # Anthropic takes the system prompt as a top-level field, not as a message.
    system = [m.text for m in request.messages if m.role == "system"]
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
        "max_tokens": request.params.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = "\n\n".join(system)
    params = request.params
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    # The current SDK no longer declares the sampling fields, but the API still
    # takes them for the models that support them (the body is sent as it is).
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    return body


async def _events(
    body: upstream.UpstreamStream, secret: str | None
) -> AsyncGenerator[StreamEvent, None]:
    """The normalised events of one Messages stream: the per-token loop."""
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    done = False
    loads = orjson.loads
    read = body.read
    decoder = SseDecoder()
    try:
        while not done:
            piece = await read()
            if not piece:
                break
            for event, data in decoder.feed(piece):
                if event == "content_block_delta":
                    delta = loads(data)["delta"]
                    # input_json_delta, thinking_delta, signature_delta: not text.
                    if delta.get("type") == "text_delta":
                        text = delta.get("text")
                        if text:
                            yield TextDelta(text)
                elif event == "message_delta":
                    payload = loads(data)
                    stop_reason = payload.get("delta", {}).get("stop_reason") or stop_reason
                    counts = payload.get("usage") or {}
                    # Cumulative, so the last one wins.
                    output_tokens = counts.get("output_tokens", output_tokens)
                    input_tokens = counts.get("input_tokens") or input_tokens
                elif event == "message_start":
                    counts = loads(data).get("message", {}).get("usage") or {}
                    input_tokens = counts.get("input_tokens")
                    output_tokens = counts.get("output_tokens")
                elif event == "message_stop":
                    done = True
                    break
                elif event == "error":
                    raise _error_event(loads(data).get("error"), secret)
                # ping, content_block_start, content_block_stop: nothing to do.
    except upstream.TransportError as exc:
        raise connection_error(_NAME, exc) from None
    except (orjson.JSONDecodeError, KeyError, AttributeError):
        raise UpstreamError(
            "anthropic sent a malformed stream event", provider=_NAME, retryable=True
        ) from None
    if not done and stop_reason is None:
        raise UpstreamError(
            "anthropic stream ended before it finished", provider=_NAME, retryable=True
        )
    usage = (
        Usage(input_tokens, output_tokens)
        if input_tokens is not None or output_tokens is not None
        else None
    )
    yield Finish(_STOP_REASONS.get(stop_reason or "", "stop"), usage)
    await body.drain()


def _error_event(error: Any, secret: str | None) -> UpstreamError:
    if isinstance(error, dict):
        kind = error.get("type")
        message = str(error.get("message") or kind or "unknown error")
    else:
        kind, message = None, str(error)
    return stream_error(_NAME, kind if isinstance(kind, str) else None, redact(message, secret))


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("anthropic sent malformed JSON", provider=_NAME) from None
    if not isinstance(data, dict):
        raise UpstreamError("anthropic sent an unexpected JSON shape", provider=_NAME)
    return data
