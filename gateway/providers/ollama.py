"""Ollama adapter: its native REST API (``/api/chat`` NDJSON) over the gateway's transport.

Ollama has no official async SDK worth its weight, and its wire format is one
JSON object per line, so the adapter sends through an ``httpx2`` client on
:mod:`gateway.upstream`, splits the body into lines as bytes and parses each with
orjson. The read timeout *is* the between-token timeout; it costs nothing per
token.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
import httpx2
import orjson

from gateway import upstream
from gateway.errors import UpstreamError
from gateway.providers._errors import connection_error, error_for_status
from gateway.providers._sdk import http_client
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

_NAME = "ollama"
# Closing a response only closes a socket, but it must neither be skipped by a
# cancellation nor hang shutdown if the peer misbehaves.
_CLOSE_TIMEOUT_S = 2.0


def create(settings: Settings) -> OllamaProvider:
    if settings.ollama_base_url is None:
        raise ValueError("ollama_base_url is not set")
    client = http_client(settings, base_url=settings.ollama_base_url)
    return OllamaProvider(client, probe_timeout_s=settings.health_probe_timeout_s)


class OllamaProvider:
    def __init__(self, client: httpx2.AsyncClient, *, probe_timeout_s: float) -> None:
        self._client = client
        self._probe_timeout_s = probe_timeout_s

    @property
    def name(self) -> str:
        return _NAME

    def stream(self, request: ChatRequest) -> _ChatStream:
        return _ChatStream(self._client, _chat_body(request, stream=True))

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            response = await self._client.post(
                "/api/chat",
                content=orjson.dumps(_chat_body(request, stream=False)),
                headers={"content-type": "application/json"},
            )
        except httpx2.HTTPError as exc:
            raise connection_error(_NAME, exc) from None
        if response.status_code != 200:
            raise _status_error(response.status_code, response.content, response.headers)
        data = _parse(response.content)
        if "error" in data:
            raise _line_error(data)
        message = data.get("message") or {}
        return Completion(
            text=message.get("content") or "",
            finish_reason=_finish_reason(data.get("done_reason")),
            usage=_usage(data),
            model=data.get("model") or request.model,
        )

    async def list_models(self) -> list[ModelInfo]:
        data = await self._get_tags(timeout_s=None)
        models: list[ModelInfo] = []
        for entry in data.get("models") or []:
            name = entry.get("name") or entry.get("model")
            if name:
                models.append(ModelInfo(id=name, owned_by=_NAME, description=_describe(entry)))
        return models

    async def probe(self) -> None:
        await self._get_tags(timeout_s=self._probe_timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get_tags(self, *, timeout_s: float | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        try:
            response = await self._client.get("/api/tags", **kwargs)
        except httpx2.HTTPError as exc:
            raise connection_error(_NAME, exc) from None
        if response.status_code != 200:
            raise _status_error(response.status_code, response.content, response.headers)
        return _parse(response.content)


class _ChatStream:
    """One streamed ``/api/chat`` call: the context manager and its event iterator.

    A hand-written ``__anext__`` rather than an async generator: nothing is left
    suspended for the garbage collector when the consumer leaves early, and
    ``__aexit__`` alone decides when the upstream response closes, unless
    :meth:`abort` cuts the connection off first.
    """

    _read: Callable[[], Awaitable[bytes]]  # set on entering: iteration only happens inside

    def __init__(self, client: httpx2.AsyncClient, body: dict[str, Any]) -> None:
        self._client = client
        self._body = body
        self._stream: upstream.UpstreamStream | None = None
        self._lines = upstream.LineDecoder()
        self._pending: deque[bytes] = deque()
        self._finished = False
        self._done = False

    async def __aenter__(self) -> _ChatStream:
        request = self._client.build_request(
            "POST",
            "/api/chat",
            content=orjson.dumps(self._body),
            headers={"content-type": "application/json"},
        )
        try:
            stream = await upstream.open_stream(self._client, request)
        except upstream.TransportError as exc:
            raise connection_error(_NAME, exc) from None
        if stream.status != 200:
            try:
                raw = await stream.read_all()
            except upstream.TransportError:
                raw = b""
            finally:
                await _close(stream)
            raise _status_error(stream.status, raw, stream.headers)
        self._stream = stream
        self._read = stream.read
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await _close(self._stream)

    def __aiter__(self) -> _ChatStream:
        return self

    def abort(self) -> None:
        """Cut the upstream connection off at once (see ``Abortable``); never raises."""
        if self._stream is not None:
            self._stream.abort()

    async def __anext__(self) -> StreamEvent:
        if self._done:
            raise StopAsyncIteration
        if self._finished:
            # Reading to EOF after the done line lets the connection go back to the pool.
            self._done = True
            assert self._stream is not None  # iteration only happens inside the block
            await self._stream.drain()
            raise StopAsyncIteration
        while True:
            try:
                line = await self._next_line()
            except upstream.TransportError as exc:
                self._done = True
                raise connection_error(_NAME, exc) from None
            if line is None:
                self._done = True
                raise UpstreamError(
                    "ollama stream ended before its done line", provider=_NAME, retryable=True
                )
            if not line:
                continue
            data = _parse(line)
            # An error line arrives with HTTP 200 and may also say done: check it first.
            if "error" in data:
                self._done = True
                raise _line_error(data)
            if data.get("done"):
                self._finished = True
                return Finish(_finish_reason(data.get("done_reason")), _usage(data))
            message = data.get("message")
            if message:
                content = message.get("content")
                if content:
                    return TextDelta(content)

    async def _next_line(self) -> bytes | None:
        """The next line of the body; ``None`` at its end."""
        pending = self._pending
        while not pending:
            piece = await self._read()
            if piece:
                pending.extend(self._lines.feed(piece))
                continue
            pending.extend(self._lines.flush())
            if not pending:
                return None
        return pending.popleft()


async def _close(stream: upstream.UpstreamStream) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_S):
        await stream.aclose()


def _chat_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "stream": stream,
    }
    p = request.params
    options: dict[str, Any] = {}
    if p.temperature is not None:
        options["temperature"] = p.temperature
    if p.top_p is not None:
        options["top_p"] = p.top_p
    if p.max_tokens is not None:
        options["num_predict"] = p.max_tokens
    if p.stop:
        options["stop"] = list(p.stop)
    if options:
        body["options"] = options
    return body


def _parse(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("ollama sent invalid JSON", provider=_NAME) from None
    if not isinstance(data, dict):
        raise UpstreamError("ollama sent an unexpected JSON value", provider=_NAME)
    return data


def _finish_reason(done_reason: Any) -> FinishReason:
    return "length" if done_reason == "length" else "stop"


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(data.get("prompt_eval_count"), data.get("eval_count"))


def _describe(entry: dict[str, Any]) -> str | None:
    details = entry.get("details") or {}
    parts = [details.get("parameter_size"), details.get("quantization_level")]
    text = " ".join(str(p) for p in parts if p)
    return text or None


def _line_error(data: dict[str, Any]) -> UpstreamError:
    # A failure inside the runner (out of memory, crashed model): worth another attempt.
    return UpstreamError(
        f"ollama failed mid-stream: {data['error']}", provider=_NAME, retryable=True
    )


def _status_error(status: int, raw: bytes, headers: httpx2.Headers) -> UpstreamError:
    message = ""
    try:
        data = orjson.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            message = data["error"]
    except orjson.JSONDecodeError:
        message = raw[:200].decode("utf-8", "replace")
    return error_for_status(_NAME, status, message or "no error message", headers)
