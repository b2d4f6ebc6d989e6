"""Limits per client key hold across instances: one key's sockets and message rate are
counted on A and B together (Redis), and a Stop is never refused by any of them."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio as aioredis

from gateway.auth import fingerprint
from tests.fakes import Scenario
from tests.gateway.ws._support import Client
from tests.redis_server import RedisServer
from tests.scaleout._cluster import Cluster, Instance, cluster, key_changes

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

KEY = "sk-client-scaleout-1"
KEY_ID = fingerprint(KEY)  # the principal: what the limits are counted by
SOCKETS = f"sockets:{KEY_ID}"  # after the cluster's prefix
LEASE_S = 1.0  # the cluster's owner lease
AUTH = {"additional_headers": {"Authorization": f"Bearer {KEY}"}}
WAIT_S = 15.0


async def _update(client: Client, event_id: str) -> str:
    """Send a costly message; the type of its answer (session.updated or the error code)."""
    await client.send("session.update", event_id=event_id, session={"model": None})
    frame = await client.next(
        where=lambda f: (
            f["type"] == "session.updated"
            or (f["type"] == "error" and f["error"].get("event_id") == event_id)
        ),
        within=WAIT_S,
    )
    return str(frame["type"] if frame["type"] == "session.updated" else frame["error"]["code"])


async def test_the_key_rate_is_shared_by_a_and_b_and_a_stop_is_never_refused(
    redis_server: RedisServer,
) -> None:
    env = {
        "GATEWAY_CLIENT_KEYS": KEY,
        # Refill negligible within the test: exactly the burst gets through.
        "GATEWAY_KEY_MESSAGES_PER_SECOND": "0.01",
        "GATEWAY_KEY_MESSAGE_BURST": "4",
    }
    async with cluster(redis_server, env=env) as c:
        c.upstream.queue(Scenario(tokens=[f" t{i}" for i in range(300)], delay_s=0.05))
        on_a = await c.a.open(**AUTH)
        on_b = await c.b.open(**AUTH)
        await on_a.create("hello")  # the first token of four
        created = await on_a.next("response.created", within=WAIT_S)
        answers = [await _update(on_a, "a1"), await _update(on_a, "a2")]
        answers += [await _update(on_b, f"b{i}") for i in range(3)]
        # Each socket alone is far below its own bucket (20/s, burst 40): only the
        # key's bucket, shared through Redis, refuses.
        assert answers == ["session.updated"] * 3 + ["rate_limited"] * 2
        (upstream_call,) = await c.upstream.wait_for_requests(1)

        # The key is out of tokens on both instances; a Stop goes through anyway.
        await on_b.send("response.cancel", response_id=created["response_id"])
        for client in (on_a, on_b):
            done = await client.next("response.done", within=WAIT_S)
            assert (done["response_id"], done["status"]) == (created["response_id"], "cancelled")
        await upstream_call.ended.wait()
        assert upstream_call.outcome == "disconnected"
        await on_a.aclose()
        await on_b.aclose()


async def _refused(instance: Instance) -> int:
    async with instance.connect(**AUTH) as client:
        return await client.closed(within=WAIT_S)


async def test_the_per_key_socket_limit_counts_sockets_on_both_instances(
    redis_server: RedisServer,
) -> None:
    env = {"GATEWAY_CLIENT_KEYS": KEY, "GATEWAY_MAX_SOCKETS_PER_KEY": "3"}
    async with cluster(redis_server, env=env) as c:
        on_a = [await c.a.open(**AUTH), await c.a.open(**AUTH)]
        on_b = await c.b.open(**AUTH)
        assert await _refused(c.b) == 1013  # two on A + one on B: the key is full
        assert await _refused(c.a) == 1013

        async with key_changes(c.redis, c.prefix + SOCKETS) as changed:
            await on_a[0].aclose()  # frees a place, on every instance
            with anyio.fail_after(WAIT_S):
                while not await _counted(c, 2):
                    await changed()
        another = await c.b.open(**AUTH)
        assert await _refused(c.b) == 1013

        # A dies: its socket stops counting once its entry lapses, one lease later.
        await c.a.kill()
        await anyio.sleep(LEASE_S + 0.2)  # the bound itself is what is tested here
        admitted = await c.b.open(**AUTH)
        assert await _refused(c.b) == 1013
        async with key_changes(c.redis, c.prefix + SOCKETS) as changed:
            for client in (on_b, another, admitted):
                await client.aclose()
            with anyio.fail_after(WAIT_S):
                while not await _counted(c, 0):  # released on close
                    await changed()


async def _counted(c: Cluster, expected: int) -> bool:
    """The key's sockets Redis counts (lapsed entries are dropped the way admission does)."""
    client = aioredis.from_url(c.redis.url)
    async with client:
        key = f"{c.prefix}{SOCKETS}"
        seconds, micros = await client.time()
        now_ms = seconds * 1000 + micros // 1000
        await client.zremrangebyscore(key, "-inf", now_ms)
        return int(await client.zcard(key)) == expected
