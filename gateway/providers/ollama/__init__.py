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
from dataclasses import replace
from types import TracebackType
from typing import Any

import anyio
import httpx2
import orjson

from gateway import upstream
from gateway.providers._errors import connection_error
from gateway.providers._sdk import http_client
from gateway.providers._support import Support, refuse
from gateway.providers.base import ChatRequest, Completion, ModelInfo, StreamEvent
from gateway.providers.ollama import decode
from gateway.providers.ollama.errors import status_error
from gateway.providers.ollama.request import build_body
from gateway.settings import Settings

_NAME = "ollama"
# Closing a response only closes a socket, but it must neither be skipped by a
# cancellation nor hang shutdown if the peer misbehaves.
_CLOSE_TIMEOUT_S = 2.0


# Ollama has no tool_choice (only the default "auto") and no way to forbid parallel calls.
SUPPORT = Support(
    _NAME,
    options=frozenset(
        {
            "tools",
            "response_format",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "reasoning_effort",
        }
    ),
    remote_images=False,
)


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

    def check(self, request: ChatRequest, *, streamed: bool) -> None:
        options = request.options
        if options.tool_choice not in (None, "auto"):
            raise refuse(_NAME, "tool_choice", "supports only tool_choice 'auto'")
        if options.parallel_tool_calls is False:
            raise refuse(_NAME, "parallel_tool_calls", "cannot turn parallel tool calls off")
        unchecked = replace(options, tool_choice=None, parallel_tool_calls=None)
        SUPPORT.check(replace(request, options=unchecked), streamed=streamed)

    def stream(self, request: ChatRequest) -> _ChatStream:
        return _ChatStream(self._client, build_body(request, stream=True))

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            response = await self._client.post(
                "/api/chat",
                content=orjson.dumps(build_body(request, stream=False)),
                headers={"content-type": "application/json"},
            )
        except httpx2.HTTPError as exc:
            raise connection_error(_NAME, exc) from None
        if response.status_code != 200:
            raise status_error(response.status_code, response.content, response.headers)
        return decode.completion(response.content, request.model)

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
            raise status_error(response.status_code, response.content, response.headers)
        return decode.parse(response.content)


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
        self._decoder = decode.StreamDecoder()
        self._pending: deque[StreamEvent] = deque()
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
            raise status_error(stream.status, raw, stream.headers)
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
        pending = self._pending
        while not pending:
            if self._done:
                raise StopAsyncIteration
            if self._decoder.done:
                self._done = True
                self._decoder.raise_error()
                # Reading to EOF after the done line lets the connection go back to the pool.
                self._done = True
                assert self._stream is not None  # iteration only happens inside the block
                await self._stream.drain()
                raise StopAsyncIteration
            try:
                piece = await self._read()
                pending.extend(self._decoder.feed(piece) if piece else self._decoder.end())
            except upstream.TransportError as exc:
                self._done = True
                raise connection_error(_NAME, exc) from None
            except Exception:
                self._done = True
                raise
        return pending.popleft()


async def _close(stream: upstream.UpstreamStream) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_S):
        await stream.aclose()


def _describe(entry: dict[str, Any]) -> str | None:
    details = entry.get("details") or {}
    parts = [details.get("parameter_size"), details.get("quantization_level")]
    text = " ".join(str(p) for p in parts if p)
    return text or None
