"""Per-socket limits: message rate (error, then 1008) and idle timeout (4008)."""

from __future__ import annotations

import anyio
import pytest

from tests.gateway.ws._support import gateway

pytestmark = pytest.mark.anyio


async def test_rate_limit_errors_then_closes_1008() -> None:
    async with gateway(messages_per_second=1, message_burst=2, max_rate_violations=3) as gw:
        client = await gw.open()
        for i in range(2):
            await client.send("ping", ts=i)
        for i in range(3):
            await client.send("ping", ts=10 + i, event_id=f"e{i}")
        assert [(await client.next("pong"))["ts"] for _ in range(2)] == [0, 1]
        errors = [(await client.next("error"))["error"] for _ in range(3)]
        assert all(e["code"] == "rate_limited" for e in errors)
        assert all(e["retryable"] is True for e in errors)
        assert all(0 < e["retry_after_ms"] <= 1000 for e in errors)
        assert await client.closed() == 1008
        assert not any(f["type"] == "pong" and f["ts"] >= 10 for f in client.frames)


async def test_silent_socket_closes_4008_and_its_response_follows_the_disconnect_rule() -> None:
    async with gateway(idle_timeout_ms=200, resume_window_ms=0, demo_token_delay_ms=50) as gw:
        client = await gw.open()
        await client.create(" ".join(["word"] * 100))  # ~5 s, far past the idle timeout
        start = anyio.current_time()
        assert await client.closed() == 4008
        assert anyio.current_time() - start >= 0.15
        with anyio.fail_after(1):
            await gw.manager.wait_idle()
        assert gw.manager.active_responses == 0


async def test_pings_keep_a_socket_alive_past_the_idle_timeout() -> None:
    async with gateway(idle_timeout_ms=300) as gw:
        client = await gw.open()
        start = anyio.current_time()
        while anyio.current_time() - start < 0.8:
            await anyio.sleep(0.1)  # pacing the client, not synchronisation
            await client.send("ping")
            await client.next("pong")
        got = await client.response(await client.create("still here"))
        assert got.text == "still here"
        await client.aclose()
