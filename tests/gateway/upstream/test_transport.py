"""The upstream transport under ``httpx2``, against real servers on loopback.

Framing, keep-alive and its limits, failures mapped to ``httpx2``'s exceptions,
and that nothing is left open afterwards. The raw server (``_raw``) writes
exactly the bytes each case needs; the fakes cover the streaming formats.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest

from gateway import upstream
from gateway.upstream import PoolLimits, UpstreamTransport
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app
from tests.gateway.upstream._raw import Peer, keep_answering, raw_server, response

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def client(
    limits: PoolLimits | None = None, **timeouts: float
) -> AsyncIterator[tuple[httpx2.AsyncClient, UpstreamTransport]]:
    transport = UpstreamTransport(ssl_context=None, limits=limits)
    timeout = httpx2.Timeout(5.0, **timeouts)
    async with httpx2.AsyncClient(transport=transport, timeout=timeout) as http:
        yield http, transport


# --- framing ---------------------------------------------------------------------------


async def test_streams_an_sse_body_and_reuses_the_connection() -> None:
    upstream_ = FakeUpstream(Scenario(tokens=["a", "b", "c"]))
    async with serve(create_app(upstream_)) as base, client() as (http, transport):
        body = {"model": "gpt-4o-mini", "messages": [], "stream": True}
        for _ in range(3):
            async with http.stream("POST", base + "/v1/chat/completions", json=body) as reply:
                assert reply.status_code == 200
                assert reply.headers["content-type"].startswith("text/event-stream")
                lines = [line async for line in reply.aiter_lines()]
            chunks = sum(1 for line in lines if line.startswith("data: {"))
            assert chunks == 5  # the role, 3 tokens, the finish
            assert lines[-2:] == ["data: [DONE]", ""]
        assert transport.pool.open_connections == 1  # one connection, reused
        assert transport.pool.idle_connections == 1
    assert [r.outcome for r in upstream_.requests] == ["completed"] * 3


async def test_content_length_chunked_and_close_delimited_bodies() -> None:
    bodies = [
        response(b"fixed length"),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nchunk\r\n6\r\ned bod\r\n1\r\ny\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the close",
    ]

    async def script(peer: Peer) -> None:
        for body in bodies:
            await peer.request()
            await peer.send(body)
        # The last body is delimited by the close itself.

    async with raw_server(script) as server, client() as (http, transport):
        got = [(await http.get(server.url)).content for _ in bodies]
        assert transport.pool.open_connections == 0  # the close-delimited one is gone
    assert got == [b"fixed length", b"chunked body", b"until the close"]
    assert server.connections == 1


async def test_interim_1xx_head_and_no_body_responses() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + response(b"real"))
        await peer.request()
        await peer.send(b"HTTP/1.1 204 No Content\r\n\r\n")
        await peer.request()  # HEAD: a length, but no body follows
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nx-head: yes\r\n\r\n")

    async with raw_server(script) as server, client() as (http, transport):
        first = await http.get(server.url)
        empty = await http.get(server.url)
        head = await http.head(server.url)
        assert transport.pool.open_connections == 0  # a HEAD's connection is not reused
    assert (first.status_code, first.content, "link" in first.headers) == (200, b"real", False)
    assert (empty.status_code, empty.content) == (204, b"")
    assert (head.status_code, head.headers["x-head"], head.content) == (200, "yes", b"")


async def test_sends_method_target_headers_and_body_exactly() -> None:
    big = b"x" * 200_000  # larger than one write: sent in a second one

    async with raw_server(keep_answering) as server, client() as (http, _):
        await http.post(server.url + "/v1/p?q=1", content=big, headers={"x-k": "v"})

        async def streamed() -> AsyncIterator[bytes]:
            yield b"part one, "
            yield b"part two"

        await http.post(server.url + "/s", content=streamed())
    first, second = server.requests
    assert first.line == b"POST /v1/p?q=1 HTTP/1.1"
    assert first.header("host") == server.url.removeprefix("http://")
    assert first.header("x-k") == "v"
    assert first.body == big
    # A streamed body was read whole and sent with a length, not chunked.
    assert second.header("transfer-encoding") is None
    assert second.header("content-length") == str(len(b"part one, part two"))
    assert second.body == b"part one, part two"


async def test_a_header_with_a_line_break_is_refused() -> None:
    async with raw_server(keep_answering) as server, client() as (http, _):
        # httpx2 lets this through (h11 would have refused it): the transport must not.
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get(server.url, headers={"x-evil": "a\r\nx-injected: 1"})
    assert server.requests == []


# --- keep-alive ------------------------------------------------------------------------


async def test_idle_connections_expire_and_closed_ones_are_not_reused() -> None:
    async def close_after_one(peer: Peer) -> None:
        await peer.request()
        await peer.send(response())
        # then hang up, as servers do with idle keep-alive connections

    async with raw_server(close_after_one) as server, client() as (http, transport):
        await http.get(server.url)
        with anyio.fail_after(2):
            await server.ended.wait()
        # No await in between: the loop may not have seen the close, the kernel has.
        assert (await http.get(server.url)).content == b"ok"
        assert transport.pool.open_connections == 1
    assert server.connections == 2

    async with (
        raw_server(keep_answering) as server,
        client(PoolLimits(keepalive_expiry=0.05)) as (http, transport),
    ):
        await http.get(server.url)
        await anyio.sleep(0.1)
        await http.get(server.url)
        assert transport.pool.open_connections == 1
    assert server.connections == 2


async def test_connection_close_and_unread_bodies_are_not_reused() -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(response(headers=("connection: close",)))

    async with raw_server(script) as server, client() as (http, transport):
        await http.get(server.url)
        await http.get(server.url)
        assert transport.pool.open_connections == 0
    assert server.connections == 2

    async def slow_body(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")

    async with raw_server(slow_body) as server, client() as (http, transport):
        for _ in range(2):
            async with http.stream("GET", server.url) as reply:
                assert reply.status_code == 200  # left before the body ended
        assert transport.pool.open_connections == 0
    assert server.connections == 2


async def test_max_connections_waits_then_times_out_on_the_pool() -> None:
    release = anyio.Event()

    async def hold(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        with anyio.move_on_after(5):
            await release.wait()
        await peer.send(b"ok")
        await keep_answering(peer)

    async with (
        raw_server(hold) as server,
        client(PoolLimits(max_connections=1), pool=0.2) as (
            http,
            transport,
        ),
    ):
        async with http.stream("GET", server.url):
            with pytest.raises(httpx2.PoolTimeout):
                await http.get(server.url)
            release.set()
        # Once the first response is done, its connection serves the next request.
        assert (await http.get(server.url)).content == b"ok"
        assert transport.pool.open_connections == 1


# --- failures --------------------------------------------------------------------------


async def test_failures_map_to_httpx2_errors_and_leave_nothing_open() -> None:
    async def malformed(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 2OO NOPE\r\n\r\n")

    async def cut_mid_body(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")

    async def silent(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nthen nothing")
        await peer.closed_by_client()

    cases: list[tuple[Any, type[Exception]]] = [
        (malformed, httpx2.RemoteProtocolError),
        (cut_mid_body, httpx2.RemoteProtocolError),
        (silent, httpx2.ReadTimeout),
    ]
    for script, expected in cases:
        async with raw_server(script) as server, client(read=0.2) as (http, transport):
            with anyio.fail_after(3), pytest.raises(expected):
                await http.get(server.url)
            assert transport.pool.open_connections == 0

    async with raw_server(keep_answering) as server:
        port = server.url.rsplit(":", 1)[1]
    async with client() as (http, transport):  # nothing listens there any more
        with pytest.raises(httpx2.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{port}")
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert transport.pool.open_connections == 0


async def test_a_read_timeout_reaches_a_stream_reader_as_a_transport_error() -> None:
    async def silent_after_headers(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await peer.closed_by_client()

    async with (
        raw_server(silent_after_headers) as server,
        client(read=0.2) as (http, _),
        http.stream("GET", server.url) as reply,
    ):
        read = upstream.adopt(reply).read
        assert await read() == b"abc"
        with anyio.fail_after(3), pytest.raises(upstream.errors.ReadTimeout) as caught:
            await read()
    assert caught.value.timed_out


async def test_the_stream_decodes_a_compressed_body_and_reads_large_ones_whole() -> None:
    text = b"".join(b"line %d\n" % i for i in range(100_000))  # ~800 KB: pauses reading

    async def script(peer: Peer) -> None:
        await peer.request()
        packed = gzip.compress(b"compressed\n")
        await peer.send(response(packed, headers=("content-encoding: gzip",)))
        await peer.request()
        await peer.send(response(text))

    async with raw_server(script) as server, client() as (http, _):
        async with http.stream("GET", server.url) as reply:
            read = upstream.adopt(reply).read
            assert await read() == b"compressed\n"
            assert await read() == b""
        async with http.stream("GET", server.url) as reply:
            read = upstream.adopt(reply).read
            pieces = []
            while piece := await read():
                pieces.append(piece)
                await anyio.sleep(0.001)  # a slow reader
    assert b"".join(pieces) == text


async def test_abort_closes_the_connection_at_once() -> None:
    seen_close = anyio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n")
        if await peer.closed_by_client():
            seen_close.set()

    async with raw_server(script) as server, client() as (http, transport):
        async with http.stream("GET", server.url) as reply:
            stream = upstream.adopt(reply)
            stream.abort()
            with anyio.fail_after(2):
                await seen_close.wait()
            with pytest.raises(upstream.TransportError):  # after what was buffered
                while await stream.read():
                    pass
        assert transport.pool.open_connections == 0
        stream.abort()  # after the close: harmless


async def test_an_environment_proxy_keeps_httpx2s_own_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with raw_server(keep_answering) as server:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with upstream.async_client(timeout=httpx2.Timeout(2.0)) as http:
            with pytest.raises((httpx2.ProxyError, httpx2.ConnectError)):
                await http.get(server.url)
        monkeypatch.delenv("HTTP_PROXY")
        async with upstream.async_client(timeout=httpx2.Timeout(2.0)) as http:
            assert (await http.get(server.url)).content == b"ok"
    assert server.connections == 1


async def test_an_idle_connection_expires_on_time_without_the_pool_being_used() -> None:
    hung_up = anyio.Event()

    async def answer_then_watch(peer: Peer) -> None:
        await peer.request()
        await peer.send(response())
        if await peer.closed_by_client():
            hung_up.set()

    async with (
        raw_server(answer_then_watch) as server,
        client(PoolLimits(keepalive_expiry=0.2)) as (http, transport),
    ):
        assert (await http.get(server.url)).content == b"ok"
        assert transport.pool.idle_connections == 1
        with anyio.fail_after(10):  # nothing else touches the pool meanwhile
            await hung_up.wait()
        assert (transport.pool.idle_connections, transport.pool.open_connections) == (0, 0)
        # The pool still works afterwards: a new connection.
        assert (await http.get(server.url)).content == b"ok"
    assert server.connections == 2
