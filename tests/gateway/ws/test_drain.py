"""Graceful drain: clients are told, in-flight answers finish, then sockets close 1012."""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests.gateway.ws._support import gateway

pytestmark = pytest.mark.anyio


async def test_drain_lets_in_flight_responses_finish_then_closes_1012() -> None:
    async with gateway(demo_token_delay_ms=10, drain_timeout_s=10) as gw:
        client = await gw.open()
        idle = await gw.open()
        text = " ".join(f"w{i}" for i in range(30))  # ~0.3 s
        await client.create(text)
        created = await client.next("response.created")
        first = await client.next("response.output_text.delta")

        lifecycle = gw.services.lifecycle
        lifecycle.start_drain()
        async with httpx.AsyncClient(base_url=gw.base) as http:
            assert (await http.get("/health/ready")).status_code == 503

        draining = await client.next("server.draining")
        assert 0 < draining["deadline_ms"] <= 10_000
        assert (await idle.next("server.draining"))["deadline_ms"] > 0

        await client.send(
            "response.create", request_id="late", messages=[{"role": "user", "content": "x"}]
        )
        err = (await client.next("error"))["error"]
        assert (err["code"], err["request_id"], err["retryable"]) == (
            "server_draining",
            "late",
            True,
        )

        frames = await client.frames_of(created["response_id"])
        rest = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
        assert first["delta"] + rest == text
        assert frames[-1]["status"] == "completed"
        assert await client.closed() == 1012
        assert await idle.closed() == 1012
        with anyio.fail_after(5):
            await lifecycle.drained.wait()
        assert len(gw.services.sockets or ()) == 0


async def test_at_the_deadline_running_responses_end_incomplete() -> None:
    async with gateway(demo_token_delay_ms=50, drain_timeout_s=0.2) as gw:
        client = await gw.open()
        await client.create(" ".join(["slow"] * 200))  # ~10 s
        created = await client.next("response.created")
        await client.next("response.output_text.delta")
        gw.services.lifecycle.start_drain()
        done = (await client.frames_of(created["response_id"]))[-1]
        assert done["status"] == "incomplete"
        assert done["reason"] == "server_shutdown"
        assert await client.closed() == 1012
        with anyio.fail_after(5):
            await gw.services.lifecycle.drained.wait()


async def test_a_socket_opened_while_draining_is_told_and_closed() -> None:
    async with gateway(drain_timeout_s=5) as gw:
        keeper = await gw.open()
        rid = await keeper.create("a")
        await keeper.response(rid)
        gw.services.lifecycle.start_drain()
        async with gw.connect() as late:
            assert (await late.next())["type"] == "session.created"
            assert (await late.next())["type"] == "server.draining"
            assert await late.closed() == 1012
