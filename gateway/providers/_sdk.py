"""The I/O glue the adapters share: their client, and the SDK-backed stream.

Both official SDKs run on ``httpx2``, here on the gateway's own transport
(:mod:`gateway.upstream`). Failures while *opening* a request come out of the
SDK as its own exception types (mapped by each adapter, through
:func:`gateway.providers._errors.connection_error` for connection failures);
the streamed body is read through :class:`gateway.upstream.UpstreamStream`,
whose failures are one family, :class:`gateway.upstream.TransportError`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

import anyio
import httpx2
import orjson

from gateway import upstream
from gateway.errors import UpstreamError
from gateway.providers._errors import connection_error, error_for_status
from gateway.providers.base import StreamEvent
from gateway.settings import Settings, Timeouts

# Closing a response only closes a socket; it must survive a cancellation
# but never hang shutdown on a misbehaving peer.
_CLOSE_TIMEOUT_S = 2.0

# Error ``type`` strings found in the providers' JSON error bodies and
# mid-stream error events, as the HTTP status they stand for.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def http_timeout(timeouts: Timeouts) -> httpx2.Timeout:
    """The client timeout. The read timeout is the between-tokens timeout too.

    It fires when no *bytes* arrive for that long, at no cost per token; an
    upstream trickling bytes that complete no event is cut off by the router's
    idle deadline instead (:class:`gateway.router.RoutedStream`). Sending the
    small request body and waiting for a pooled connection count as connecting.
    """
    return httpx2.Timeout(
        connect=timeouts.connect_s,
        read=timeouts.between_tokens_s,
        write=timeouts.connect_s,
        pool=timeouts.connect_s,
    )


def http_client(settings: Settings, **kwargs: Any) -> httpx2.AsyncClient:
    """The client an adapter sends through (an SDK's ``http_client``), with its timeouts."""
    return upstream.async_client(
        timeout=http_timeout(settings.timeouts),
        own_transport=settings.upstream_transport == "gateway",
        **kwargs,
    )


# A key as providers echo it back, whole or masked (OpenAI's 401 keeps its first and
# last characters around asterisks): OpenAI's sk-/sk-proj-, Anthropic's sk-ant-.
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_*\-]{4,}")


def redact(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` and without anything shaped like a key, masked or not
    (providers echo a rejected key in their 401 message)."""
    if secret and secret in text:
        text = text.replace(secret, "[redacted]")
    return _KEY_SHAPED.sub("[redacted]", text)


def stream_error(provider: str, error_type: str | None, message: str) -> UpstreamError:
    """The gateway error for an error event inside an otherwise successful stream.

    The event's ``type`` decides class and retryability the way its HTTP status
    would have (``overloaded_error`` is the streamed form of HTTP 529); an
    unknown type counts as a retryable server-side failure.
    """
    status = ERROR_TYPE_STATUS.get(error_type or "", 502)
    shape = error_for_status(provider, status, message)
    return type(shape)(
        f"{provider} stream failed ({error_type or 'error'}): {message}",
        provider=provider,
        upstream_status=shape.upstream_status,
        retryable=shape.retryable,
        param=shape.param,
    )


class StreamDecoding(Protocol):
    """A sans-I/O stream decoder: body bytes in, events out (each adapter's ``decode``)."""

    @property
    def done(self) -> bool: ...

    def feed(self, piece: bytes) -> list[StreamEvent]: ...

    def end(self) -> StreamEvent: ...


async def decoded_events(
    body: upstream.UpstreamStream, decoder: StreamDecoding, provider: str
) -> AsyncGenerator[StreamEvent, None]:
    """The normalised events of one streamed body: read, decode, yield, then its Finish."""
    read = body.read
    try:
        while not decoder.done:
            piece = await read()
            if not piece:
                break
            for event in decoder.feed(piece):
                yield event
    except upstream.TransportError as exc:
        raise connection_error(provider, exc) from None
    yield decoder.end()
    await body.drain()


class SdkClient(Protocol):
    """What both SDK clients offer: the generic ``post`` their typed methods use."""

    @property
    def base_url(self) -> httpx2.URL: ...

    def post(self, path: str, *, cast_to: Any, content: bytes, stream: bool) -> Awaitable[Any]: ...


def endpoint(client: SdkClient, path: str) -> str:
    """``path`` joined to the client's ``base_url``, exactly as the SDK joins them.

    The SDK joins a relative path on every request (parsing the path, then the
    joined URL again): a fifth of its request build. Joined once here, each
    request's absolute URL is parsed once and otherwise passes as given. Only
    for a client that is not re-pointed later (the adapters build their own).
    Bench: instructions per streamed request 2,865,718 -> 2,725,179 (-4.9 %,
    ``bench.request_cost --instructions``; bench/README.md optimisation log).
    """
    base = client.base_url
    return str(base.copy_with(raw_path=base.raw_path + path.lstrip("/").encode("ascii")))


async def post_json(
    client: SdkClient,
    path: str,
    body: dict[str, Any],
    translate: Callable[[Exception], Exception],
) -> bytes:
    """One non-streamed request through the client's generic ``post``: the raw body.

    The same route as :class:`SdkStream` (see there why), read whole.
    """
    try:
        response: httpx2.Response = await client.post(
            path, cast_to=httpx2.Response, content=orjson.dumps(body), stream=False
        )
    except Exception as exc:
        raise translate(exc) from None
    return response.content


class SdkStream:
    """One streamed SDK request: entering sends it, exiting closes the response.

    The body, already in wire form, goes through the client's generic ``post``
    with ``cast_to=httpx2.Response``: the SDKs' documented way to send a prepared
    body and get the raw response back. The client still does auth, base URL,
    headers, timeouts and status-error mapping; what is skipped is the typed
    parameter transform of ``create(...)`` (a recursive walk over the whole
    body, a third of the cost of starting a stream) and the typed stream object
    built around the response (which also holds itself in a reference cycle).
    Bench: gateway CPU to start one stream 1.51 -> 1.32 ms (in-process, cProfile
    off; bench/README.md optimisation log).

    ``translate`` maps the SDK's exceptions, ``events`` turns the response's
    :class:`~gateway.upstream.UpstreamStream` into normalised events. Exceptions
    raised by the consumer's own block pass through untouched. Entering returns
    the stream itself: an iterator over those events that is also
    :class:`~gateway.providers.base.Abortable`.
    """

    __slots__ = (
        "_body",
        "_client",
        "_events",
        "_make_events",
        "_path",
        "_stream",
        "_translate",
    )

    _events: AsyncGenerator[StreamEvent, None]  # set on entering

    def __init__(
        self,
        client: SdkClient,
        path: str,
        body: dict[str, Any],
        translate: Callable[[Exception], Exception],
        events: Callable[[upstream.UpstreamStream], AsyncGenerator[StreamEvent, None]],
    ) -> None:
        self._client = client
        self._path = path
        self._body = body
        self._translate = translate
        self._make_events = events
        self._stream: upstream.UpstreamStream | None = None

    async def __aenter__(self) -> SdkStream:
        try:
            response: httpx2.Response = await self._client.post(
                self._path,
                cast_to=httpx2.Response,
                content=orjson.dumps(self._body),
                stream=True,
            )
        except Exception as exc:
            raise self._translate(exc) from None
        self._stream = stream = upstream.adopt(response)
        self._events = self._make_events(stream)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            if self._stream is not None:  # entered: the events exist too
                await self._events.aclose()
                await self._stream.aclose()

    def __aiter__(self) -> SdkStream:
        return self

    def __anext__(self) -> Awaitable[StreamEvent]:
        # The generator's own awaitable: no extra coroutine frame per token.
        return self._events.__anext__()

    def abort(self) -> None:
        """Cut the upstream connection off at once (see ``Abortable``); never raises."""
        if self._stream is not None:
            self._stream.abort()
