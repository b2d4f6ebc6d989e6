"""Two real gateway processes sharing one real Redis, driven by real WebSocket clients.

What a single process cannot show: a response started on A is resumed, cancelled
and deduplicated through B, and A dying mid-answer ends B's followers
``failed``/``owner_lost`` within the lease bound.
"""

from __future__ import annotations

import time

import anyio
import orjson
import pytest
import redis.asyncio as aioredis

from tests.fakes import Scenario
from tests.gateway.ws._support import Client, Frame
from tests.redis_server import RedisServer
from tests.scaleout._cluster import Cluster, cluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TOKENS = [f" t{i}" for i in range(30)]
PACED = Scenario(tokens=TOKENS, delay_s=0.05)
WAIT_S = 15.0


def _text(frames: list[Frame]) -> str:
    return "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")


async def test_drop_on_a_resume_on_b_gets_the_whole_text_exactly_once(
    redis_server: RedisServer,
) -> None:
    async with cluster(redis_server) as c:
        c.upstream.queue(PACED)
        first = await c.a.open()
        request_id = await first.create("hello")
        created = await first.next("response.created", within=WAIT_S)
        response_id, epoch = created["response_id"], created["epoch"]
        seen = [await first.next("response.output_text.delta", within=WAIT_S) for _ in range(3)]
        await first.aclose()  # the socket drops mid-answer

        second = await c.b.open()
        last_seq = seen[-1]["seq"]
        await second.send(
            "response.resume", response_id=response_id, epoch=epoch, last_seq=last_seq
        )
        result = await second.next("resume.result", within=WAIT_S)
        assert (result["recovered"], result["from_seq"]) == (True, last_seq + 1)
        rest = await second.frames_of(response_id)
        await second.aclose()

        assert _increasing(rest)[0] > last_seq
        assert _text(seen) + _text(rest) == "".join(TOKENS)
        assert rest[-1]["status"] == "completed"
        assert rest[-1]["request_id"] == request_id
        assert len(c.upstream.requests) == 1


async def test_stop_and_kill(redis_server: RedisServer) -> None:
    """The harness's own lifecycle: SIGTERM drains and exits 0, SIGKILL is -9."""
    async with cluster(redis_server) as c:
        with anyio.fail_after(WAIT_S):
            assert await c.a.stop() == 0
            assert await c.b.kill() == -9
        await c.a.wait_log("drain.finished", within=1)


async def test_cancel_on_b_stops_the_upstream_on_a_and_both_clients_see_cancelled(
    redis_server: RedisServer,
) -> None:
    async with cluster(redis_server) as c:
        c.upstream.queue(Scenario(tokens=TOKENS * 10, delay_s=0.05))
        owner = await c.a.open()
        canceller = await c.b.open()
        await owner.create("hello")
        created = await owner.next("response.created", within=WAIT_S)
        response_id = created["response_id"]
        await owner.next("response.output_text.delta", within=WAIT_S)
        (upstream_call,) = await c.upstream.wait_for_requests(1)

        await canceller.send("response.cancel", response_id=response_id)
        started = time.monotonic()
        with anyio.fail_after(WAIT_S):
            await upstream_call.ended.wait()
        # Seen from the upstream's side: A closed its connection, the answer was not over.
        assert upstream_call.outcome == "disconnected"
        assert upstream_call.ended_at is not None and upstream_call.ended_at - started < 5
        on_owner = await owner.next("response.done", within=WAIT_S)
        on_canceller = await canceller.next("response.done", within=WAIT_S)
        for done in (on_owner, on_canceller):
            assert (done["response_id"], done["status"]) == (response_id, "cancelled")
        assert on_owner["seq"] == on_canceller["seq"]
        assert upstream_call.chunks_sent < len(TOKENS) * 10
        await owner.aclose()
        await canceller.aclose()


async def _logged(c: Cluster, response_id: str) -> tuple[list[int], str]:
    """The seqs of ``response_id``'s events in Redis and their text, read directly."""
    client = aioredis.from_url(c.redis.url)
    async with client:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
            f"{c.prefix}events:{response_id}"
        )
    seqs = [int(entry_id.split(b"-")[1]) for entry_id, _ in entries]
    text = "".join(orjson.loads(fields[b"e"]).get("text", "") for _, fields in entries)
    return seqs, text


def _increasing(frames: list[Frame]) -> list[int]:
    """The frames' seqs, checked strictly increasing (merged deltas skip seqs)."""
    seqs = [f["seq"] for f in frames if "seq" in f]
    assert seqs == sorted(set(seqs)), seqs
    return seqs


async def _followed(
    c: Cluster, tokens: list[str], *, deltas: int
) -> tuple[Client, Client, str, int]:
    """A paced answer started on A and followed on B from its start, ``deltas`` read on
    B: (A's client, B's client, response id, epoch)."""
    c.upstream.queue(Scenario(tokens=tokens, delay_s=0.05))
    first = await c.a.open()
    await first.create("hello")
    created = await first.next("response.created", within=WAIT_S)
    response_id, epoch = created["response_id"], created["epoch"]
    follower = await c.b.open()
    await follower.send("response.resume", response_id=response_id, epoch=epoch, last_seq=-1)
    assert (await follower.next("resume.result", within=WAIT_S))["recovered"]
    for _ in range(deltas):
        await follower.next("response.output_text.delta", within=WAIT_S)
    return first, follower, response_id, epoch


async def test_sigkill_a_mid_answer_followers_on_b_get_what_a_published_then_owner_lost(
    redis_server: RedisServer,
) -> None:
    async with cluster(redis_server) as c:
        # A follower on B from the start, live when A dies.
        first, follower, response_id, epoch = await _followed(c, TOKENS * 10, deltas=3)

        assert await c.a.kill() == -9
        killed = time.monotonic()
        logged = await _logged(c, response_id)  # what A published before it died
        frames = await follower.frames_of(response_id)
        lease_s = 1.0  # GATEWAY_REDIS_OWNER_LEASE_MS in the cluster
        # The bound: the lease runs out, and a follower notices within a third of it.
        assert time.monotonic() - killed < lease_s * 4 / 3 + 3.0  # + slack for a loaded box
        done = frames[-1]
        assert (done["type"], done["status"], done["reason"]) == (
            "response.done",
            "failed",
            "owner_lost",
        )
        body = [f for f in follower.frames if f.get("response_id") == response_id]
        seqs = _increasing(body)
        # Exactly what A had logged, then the Done a follower logged for everyone.
        logged_seqs, logged_text = logged
        assert (seqs[-2], done["seq"]) == (logged_seqs[-1], logged_seqs[-1] + 1)
        assert _text(body) == logged_text
        assert logged_text == "".join(TOKENS * 10)[: len(logged_text)]

        # A client resuming on B afterwards gets the same: everything, then the same end.
        late = await c.b.open()
        await late.send("response.resume", response_id=response_id, epoch=epoch, last_seq=-1)
        assert (await late.next("resume.result", within=WAIT_S))["recovered"]
        again = await late.frames_of(response_id)
        assert _increasing(again)[-1] == done["seq"]
        assert _text(again) == logged_text
        assert again[-1]["reason"] == "owner_lost"
        await follower.aclose()
        await late.aclose()
        await first.aclose()


async def test_the_same_request_id_on_a_and_b_makes_one_upstream_call(
    redis_server: RedisServer,
) -> None:
    async with cluster(redis_server) as c:
        c.upstream.default = PACED
        on_a = await c.a.open()
        on_b = await c.b.open()
        # Sent at once: whichever instance claims it runs it, the other follows.
        async with anyio.create_task_group() as tg:
            tg.start_soon(on_a.create, "hello", "same-request")
            tg.start_soon(on_b.create, "hello", "same-request")
        got_a = await on_a.response("same-request", within=WAIT_S)
        got_b = await on_b.response("same-request", within=WAIT_S)
        assert got_a.response_id == got_b.response_id
        assert got_a.text == got_b.text == "".join(TOKENS)
        assert got_a.done["status"] == got_b.done["status"] == "completed"
        assert len(c.upstream.requests) == 1
        await on_a.aclose()
        await on_b.aclose()


async def test_sigterm_of_a_ends_b_s_follower_server_shutdown_not_owner_lost(
    redis_server: RedisServer,
) -> None:
    """A graceful stop flushes the owner's last events and Done to Redis before its lease
    goes: a follower elsewhere learns the real end, not ``owner_lost``."""
    async with cluster(redis_server) as c:
        # Long enough to outlast the drain.
        first, follower, response_id, _ = await _followed(c, TOKENS * 20, deltas=1)

        assert await c.a.stop() == 0  # drain (3 s here), then the answer is cut
        frames = await follower.frames_of(response_id)
        done = frames[-1]
        assert (done["status"], done["reason"]) == ("incomplete", "server_shutdown")
        text = _text([f for f in follower.frames if f.get("response_id") == response_id])
        assert text and "".join(TOKENS * 20).startswith(text)
        await follower.aclose()
        await first.aclose()
