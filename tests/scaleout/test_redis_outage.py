"""Redis stops mid-test and comes back on the same port: the gateways stay up and say so.

The throwaway server persists every write (append-only file, fsync per write) and is
stopped with SIGTERM and started again on the same port and data directory, so a
restart keeps what was written before it: "lost" then means what the gateways
wrote -- or should have written -- is missing afterwards. Checked: a response
finished before the outage, and one that ran through it (its events queued while
Redis was away and written when it was back), are both resumable whole on the
other instance afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import Scenario
from tests.gateway.ws._support import Client
from tests.redis_server import RedisServer, running_redis
from tests.scaleout._cluster import Instance, cluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

WAIT_S = 15.0
TOKENS = [f" t{i}" for i in range(60)]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own: it is stopped and restarted."""
    with running_redis() as server:
        yield server


async def _ready(instance: Instance) -> dict[str, object]:
    async with instance.http() as client:
        answer = await client.get("/health/ready")
    assert answer.status_code == 200, answer.text  # Redis down is reported, not a 503
    body: dict[str, object] = answer.json()
    return body


async def _resumed_text(client: Client, response_id: str, epoch: int) -> tuple[str, str]:
    await client.send("response.resume", response_id=response_id, epoch=epoch, last_seq=-1)
    result = await client.next("resume.result", where=lambda f: f["response_id"] == response_id)
    assert result["recovered"], result
    frames = await client.frames_of(response_id)
    text = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
    return text, frames[-1]["status"]


async def test_an_outage_refuses_new_work_typed_lets_running_work_finish_and_recovers(
    own_redis: RedisServer,
) -> None:
    async with cluster(own_redis) as c:
        on_a = await c.a.open()
        on_b = await c.b.open()
        # Before the outage: one answer finished, one running (paced through it).
        before = await on_a.response(await on_a.create("first"), within=WAIT_S)
        c.upstream.queue(Scenario(tokens=TOKENS, delay_s=0.05))
        await on_a.create("second")
        running = await on_a.next("response.created", within=WAIT_S)
        await on_a.next("response.output_text.delta", within=WAIT_S)

        logged = len(c.a.logs), len(c.b.logs)
        own_redis.stop()
        await c.a.wait_log("sessions.redis_unavailable", since=logged[0], within=WAIT_S)
        await c.b.wait_log("sessions.redis_unavailable", since=logged[1], within=WAIT_S)
        for instance in (c.a, c.b):
            body = await _ready(instance)
            assert body["status"] == "ready"
            assert body["sessions_backend"] == {"kind": "redis", "available": False}

        # New work that needs Redis: a clear, typed, retryable refusal naming the request.
        refused_id = await on_b.create("during")
        error = (await on_b.next("error", within=WAIT_S))["error"]
        assert (error["code"], error["request_id"]) == ("sessions_unavailable", refused_id)
        assert error["retryable"] is True
        # The running answer goes on and ends whole, Redis or not.
        rest = await on_a.frames_of(running["response_id"])
        assert rest[-1]["status"] == "completed"
        assert len(c.upstream.requests) == 2  # the refused one never went upstream

        logged = len(c.a.logs), len(c.b.logs)
        own_redis.start()  # same port, same data directory
        await c.a.wait_log("sessions.redis_available", since=logged[0], within=WAIT_S)
        await c.b.wait_log("sessions.redis_available", since=logged[1], within=WAIT_S)
        assert (await _ready(c.b))["sessions_backend"] == {"kind": "redis", "available": True}

        # Nothing written before (or queued during) the outage is lost: both answers
        # resume whole on the other instance.
        late = await c.b.open()
        text, status = await _resumed_text(late, before.response_id, before.created["epoch"])
        assert (text, status) == (before.text, "completed")
        text, status = await _resumed_text(late, running["response_id"], running["epoch"])
        assert (text, status) == ("".join(TOKENS), "completed")
        # And new work starts again, by itself.
        again = await on_b.response(await on_b.create("after"), within=WAIT_S)
        assert again.done["status"] == "completed"
        for client in (on_a, on_b, late):
            await client.aclose()
