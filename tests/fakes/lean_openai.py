"""A lean fake OpenAI for load: the same stream bytes as :mod:`tests.fakes.openai`, cheaply.

The Starlette fake costs about as much CPU per token as the gateway itself, and
it learns of a hang-up a task switch or two after uvicorn does. Under benchmark
load at concurrency 100 on two cores that makes the *upstream* the slowest part
of every path it is on -- the direct baseline included -- so the benchmarks'
latency and cancel scenarios use this server instead: an asyncio protocol per
connection (httptools, as uvicorn uses), one loop timer per paced token, and the
request's end recorded in the very callback in which the connection is lost.

It serves what the benchmarks need: ``POST /v1/chat/completions`` with
``stream: true`` (chunks built by the Starlette fake's own functions, so the
bytes are the same), and ``GET /_fake/requests`` with the same records as the
standalone runner (:mod:`tests.fakes.__main__`). Anything else is a 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httptools
import orjson

from tests.fakes.base import FakeUpstream, RequestRecord, describe
from tests.fakes.openai import _chunk_base, _data, _usage

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _framed(data: bytes) -> bytes:
    """One piece of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _reply(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


class _Stream:
    """One streamed answer, written token by token from loop timers."""

    def __init__(
        self,
        connection: _Connection,
        record: RequestRecord,
        model: str,
        include_usage: bool,
    ) -> None:
        self._connection = connection
        self.record = record
        self._tokens = connection.upstream.default.tokens
        self._delay = connection.upstream.default.delay_s
        self._usage = _usage(connection.upstream.default) if include_usage else None
        self._ident = f"chatcmpl-fake{record.id}"
        self._created = int(time.time())
        self._model = model
        self._index = 0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        role = self._choice({"role": "assistant", "content": "", "refusal": None})
        self._connection.write(_STREAM_HEAD + _framed(role))
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._delay:
            loop = self._connection.loop
            self._timer = loop.call_later(self._delay, self._next)
        else:
            while self._timer is None and self.record.outcome == "pending":
                self._next()

    def _next(self) -> None:
        self._timer = None
        tokens = self._tokens
        if self._index < len(tokens):
            text = tokens[self._index]  # a stamped token is read just before it is sent
            self._index += 1
            self._connection.write(_framed(self._choice({"content": text})))
            self.record.chunks_sent += 1
            if self._delay:
                self._schedule()
            return
        tail = [self._choice({}, "stop")]
        if self._usage is not None:
            usage_chunk = _chunk_base(self._ident, self._created, self._model, [])
            usage_chunk["usage"] = self._usage
            tail.append(_data(usage_chunk))
        tail.append(b"data: [DONE]\n\n")
        self._connection.write(b"".join(_framed(part) for part in tail) + b"0\r\n\r\n")
        self.record.finish("completed")
        self._connection.stream_ended(self)

    def _choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _data(_chunk_base(self._ident, self._created, self._model, [choice]))


class _Connection(asyncio.Protocol):
    def __init__(self, upstream: FakeUpstream, loop: asyncio.AbstractEventLoop) -> None:
        self.upstream = upstream
        self.loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._stream: _Stream | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.write(_reply("400 Bad Request", b"{}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.record.finish("disconnected")  # the hang-up, seen at once

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method()
        target = urlsplit(self._url.decode("latin-1"))
        handler = _ROUTES.get((method, target.path))
        if handler is None:
            self.write(_reply("404 Not Found", b'{"error": "not found"}'))
            return
        handler(self, target.query)

    # --- used by streams and handlers ---

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def stream_ended(self, stream: _Stream) -> None:
        if self._stream is stream:
            self._stream = None

    def chat(self, query: str) -> None:
        body = orjson.loads(b"".join(self._body) or b"{}")
        stream = body.get("stream") is True
        record = _record(self.upstream, self._headers, body, stream)
        if not stream:
            record.finish("error")
            self.write(_reply("400 Bad Request", b'{"error": "only streams here"}'))
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._stream = _Stream(self, record, body.get("model", ""), include_usage)
        self._stream.start()

    def requests(self, query: str) -> None:
        since = int((parse_qs(query).get("since") or ["0"])[0])
        listed = [describe(r) for r in self.upstream.requests if r.id > since]
        self.write(_reply("200 OK", orjson.dumps({"requests": listed})))


def _record(
    upstream: FakeUpstream, headers: dict[str, str], body: Any, stream: bool
) -> RequestRecord:
    """A request record made outside any task: with an asyncio event, not an anyio one
    (anyio cannot tell its backend from a bare protocol callback)."""
    ended: Any = asyncio.Event()
    record = RequestRecord(
        len(upstream.requests) + 1,
        "POST",
        "/v1/chat/completions",
        headers,
        body,
        stream,
        ended=ended,
    )
    upstream.requests.append(record)
    return record


_ROUTES: dict[tuple[bytes, str], Callable[[_Connection, str], None]] = {
    (b"POST", "/v1/chat/completions"): _Connection.chat,
    (b"GET", "/_fake/requests"): _Connection.requests,
}


async def serve_lean(upstream: FakeUpstream, sock: Any) -> None:
    """Serve ``upstream``'s default scenario on the listening socket ``sock``, forever."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(upstream, loop), sock=sock)
    async with server:
        await server.serve_forever()
