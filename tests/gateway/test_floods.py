"""Floods over a real gateway: socket churn, response floods, slowloris handshakes.

Message floods on one socket (pings, creates) are in tests/gateway/ws/test_limits.py.
Each flood runs next to a prober that keeps asking ``/health/live``: the instance
must answer it, within a bound, the whole time.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from tests.gateway.ws._support import Gateway, gateway, new_request_id, user

pytestmark = pytest.mark.anyio

HEALTH_WITHIN_S = 5.0  # generous: the suite shares two cores; a wedged loop never answers


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def health_prober(gw: Gateway) -> AsyncIterator[list[int]]:
    """Ask ``/health/live`` over and over while the body runs; every answer must come
    within ``HEALTH_WITHIN_S``. Yields the list of status codes seen so far."""
    seen: list[int] = []
    async with httpx.AsyncClient(base_url=gw.base) as http, anyio.create_task_group() as tg:

        async def probe() -> None:
            while True:
                with anyio.fail_after(HEALTH_WITHIN_S):
                    seen.append((await http.get("/health/live")).status_code)
                await anyio.sleep(0.01)

        tg.start_soon(probe)
        yield seen
        # One more answer after the flood, so the prober surely ran through it.
        with anyio.fail_after(HEALTH_WITHIN_S):
            seen.append((await http.get("/health/live")).status_code)
        tg.cancel_scope.cancel()


async def settled(gw: Gateway) -> None:
    assert gw.services.sockets is not None
    with anyio.fail_after(10):
        await gw.services.sockets.wait_empty()
        await gw.manager.wait_idle()
        await gw.manager.wait_for(lambda: gw.manager.sessions == 0)


SOCKETS = 200
BURST = 40


async def test_sockets_opening_and_closing_in_bursts_leave_nothing_behind() -> None:
    async with gateway(resume_window_ms=0) as gw:

        async def churn(index: int) -> None:
            client = await gw.open()
            if index % 4 == 0:  # some ask for an answer and leave while it streams
                await client.create("a b c d e f g h i j")
            if index % 2:
                await client.aclose()
            else:  # the rest vanish without a close frame
                client.ws.transport.abort()

        async with health_prober(gw) as seen:
            for burst in range(SOCKETS // BURST):
                async with anyio.create_task_group() as tg:
                    for index in range(BURST):
                        tg.start_soon(churn, burst * BURST + index)
        await settled(gw)

        assert seen and all(code == 200 for code in seen)
        assert gw.services.sockets is not None and len(gw.services.sockets) == 0
        assert gw.manager.sessions == 0
        assert gw.manager.producer_tasks == 0
        assert gw.manager.active_responses == 0
        # And the instance still serves a new socket end to end.
        client = await gw.open()
        assert (await client.response(await client.create("still here"))).text == "still here"
        await client.aclose()


async def test_responses_beyond_the_limit_get_typed_errors_and_the_others_complete() -> None:
    sessions, per_session, limit = 10, 5, 2
    async with gateway(demo_token_delay_ms=20, max_concurrent_responses=limit) as gw:

        async def flood() -> tuple[list[str], dict[str, str]]:
            client = await gw.open()
            ids = [new_request_id() for _ in range(per_session)]
            for rid in ids:  # all at once: nothing has finished when the third arrives
                await client.send("response.create", request_id=rid, messages=user("a b c d e f"))
            done: list[str] = []
            refused: dict[str, str] = {}
            requests: dict[str, str] = {}  # response_id -> request_id
            text: dict[str, str] = {}
            with anyio.fail_after(15):
                while len(done) + len(refused) < per_session:
                    frame = await client.next()
                    if frame["type"] == "error":
                        refused[frame["error"]["request_id"]] = frame["error"]["code"]
                    elif frame["type"] == "response.created":
                        requests[frame["response_id"]] = frame["request_id"]
                    elif frame["type"] == "response.output_text.delta":
                        text[frame["response_id"]] = (
                            text.get(frame["response_id"], "") + frame["delta"]
                        )
                    elif frame["type"] == "response.done":
                        assert frame["status"] == "completed"
                        assert text[frame["response_id"]] == "a b c d e f"
                        done.append(requests[frame["response_id"]])
            await client.aclose()
            assert set(done) | set(refused) == set(ids)
            return done, refused

        results: list[tuple[list[str], dict[str, str]]] = []

        async def run() -> None:
            results.append(await flood())

        async with health_prober(gw) as seen, anyio.create_task_group() as tg:
            for _ in range(sessions):
                tg.start_soon(run)
        await settled(gw)

        assert seen and all(code == 200 for code in seen)
        assert len(results) == sessions
        for done, refused in results:
            assert len(done) == limit
            assert set(refused.values()) == {"too_many_responses"}
            assert len(refused) == per_session - limit
        assert gw.manager.producer_tasks == 0


PARTIAL_UPGRADE = (
    b"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    # ... and the rest of the headers never come.
)


async def test_slowloris_handshakes_do_not_stall_the_instance() -> None:
    stalled: list[socket.socket] = []
    async with gateway(demo_token_delay_ms=5) as gw:
        host, port = gw.base.removeprefix("http://").split(":")
        try:
            for _ in range(50):
                sock = await anyio.to_thread.run_sync(socket.create_connection, (host, int(port)))
                sock.sendall(PARTIAL_UPGRADE)
                stalled.append(sock)

            async with health_prober(gw) as seen:
                client = await gw.open()
                got = await client.response(await client.create("one two three"))
                assert got.text == "one two three"
                assert got.done["status"] == "completed"
                await client.aclose()
            assert seen and all(code == 200 for code in seen)

            # uvicorn has no header-read timeout: ``timeout_keep_alive`` is armed only
            # after a response, so a half-sent request is held until the client goes
            # (README "Operating it": cap it at the proxy in front). Pin that fact: if
            # uvicorn starts closing them, the README must change too.
            for sock in stalled:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)  # open, nothing sent: b"" would mean closed
        finally:
            for sock in stalled:
                sock.close()
