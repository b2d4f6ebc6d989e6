"""Two real gateway processes sharing one real Redis, driven by real WebSocket clients.

What a single process cannot show: a response started on A is resumed, cancelled
and deduplicated through B, and A dying mid-answer ends B's followers
``failed``/``owner_lost`` within the lease bound.
"""

from __future__ import annotations

import anyio
import pytest

from tests.fakes import Scenario
from tests.gateway.ws._support import Frame
from tests.redis_server import RedisServer
from tests.scaleout._cluster import cluster

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

        assert rest[0]["seq"] == last_seq + 1
        seqs = [f["seq"] for f in rest]
        assert seqs == list(range(last_seq + 1, last_seq + 1 + len(rest)))
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
