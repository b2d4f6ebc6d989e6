"""A client that stops reading: merged deltas, nothing lost, bounded memory, then 4013.

(The drain deadline, and huge deltas read promptly, are in test_slow_consumer.py.)

To make "stops reading" bite quickly the kernel buffers are pinned small on both
ends and the client neither compresses (repetitive text would shrink to nothing)
nor queues more than one frame (``_support.stalled_client``); otherwise megabytes
vanish into socket buffers before the gateway notices.
"""

from __future__ import annotations

import anyio
import pytest

from gateway.ws.outbox import HARD_CAP_FACTOR, MAX_MERGED_CHARS
from tests.fakes import Scenario
from tests.gateway.ws._support import (
    SMALL_BUFFER,
    fake_upstream,
    gateway,
    only_outbox,
    stalled_client,
)

pytestmark = pytest.mark.anyio

MODEL = "openai/gpt-4o-mini"
# 2000 tokens of ~1 KB: far more than every buffer between the gateway and the client.
TOKENS = [f" {i:06d}" + "x" * 1000 for i in range(2000)]
FULL = "".join(TOKENS)


async def test_slow_reader_gets_merged_deltas_and_loses_nothing() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS))
        cap = 4 * 1024 * 1024
        async with gateway(outbox_max_bytes=cap, send_buffer=SMALL_BUFFER, **overrides) as gw:
            client = await stalled_client(gw)
            outbox = only_outbox(gw)
            rid = await client.create("hi", model=MODEL)
            # The client reads nothing until the whole answer has been produced.
            with anyio.fail_after(10):
                await upstream.wait_for_requests(1)
                await gw.manager.wait_for(lambda: gw.manager.active_responses == 0)
            assert outbox.nbytes > 1024 * 1024  # the writer really was blocked
            got = await client.response(rid, within=10)
            assert got.text == FULL
            assert got.done["status"] == "completed"
            assert got.done["seq"] == len(TOKENS) + 1
            seqs = [d["seq"] for d in got.deltas]
            assert seqs == sorted(set(seqs))
            assert seqs[-1] == len(TOKENS)  # a merged frame carries its last delta's seq
            assert len(got.deltas) < len(TOKENS) // 4  # merged, heavily
            assert max(len(d["delta"]) for d in got.deltas) <= MAX_MERGED_CHARS
            assert outbox.merged > 0
            assert outbox.peak_bytes <= cap
            assert not outbox.overflowed
            await client.aclose()


async def test_past_the_hard_cap_the_socket_closes_4013_at_once_and_the_upstream_stops() -> None:
    async with fake_upstream() as (upstream, overrides):
        # Paced, so the upstream is still sending when the gateway gives up on the client.
        upstream.queue(Scenario(tokens=TOKENS * 2, delay_s=0.001))
        cap = 64 * 1024
        async with gateway(
            outbox_max_bytes=cap,
            # Far longer than the test may take: only the hard cap can close it in time.
            outbox_drain_timeout_ms=600_000,
            resume_window_ms=0,
            send_buffer=SMALL_BUFFER,
            **overrides,
        ) as gw:
            client = await stalled_client(gw)
            outbox = only_outbox(gw)
            await client.create("hi", model=MODEL)
            (record,) = await upstream.wait_for_requests(1)
            with anyio.fail_after(5):
                await record.ended.wait()
            assert record.outcome == "disconnected"
            assert outbox.overflowed
            assert cap < outbox.peak_bytes <= HARD_CAP_FACTOR * cap
            # What did arrive is a gapless prefix of the answer, then the close.
            code = await client.closed()
            assert code == 4013
            deltas = [f for f in client.frames if f["type"] == "response.output_text.delta"]
            text = "".join(d["delta"] for d in deltas)
            assert FULL.startswith(text)
            assert not any(f["type"] == "response.done" for f in client.frames)
            with anyio.fail_after(1):
                await gw.manager.wait_idle()


async def test_after_4013_the_response_can_be_resumed_whole() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS))
        async with gateway(
            outbox_max_bytes=64 * 1024,
            resume_window_ms=10_000,
            replay_max_bytes=8 * 1024 * 1024,
            send_buffer=SMALL_BUFFER,
            **overrides,
        ) as gw:
            client = await stalled_client(gw)
            await client.create("hi", model=MODEL)
            # Not reading while the whole answer is produced: the outbox overflows on the
            # way, and the response runs on detached.
            with anyio.fail_after(10):
                await upstream.wait_for_requests(1)
                await gw.manager.wait_for(lambda: gw.manager.active_responses == 0)
            assert await client.closed() == 4013
            created = next(f for f in client.frames if f["type"] == "response.created")
            deltas = [f for f in client.frames if f["type"] == "response.output_text.delta"]
            last_seq = deltas[-1]["seq"] if deltas else 0
            before = "".join(d["delta"] for d in deltas)

            again = await gw.open()
            await again.send(
                "response.resume",
                response_id=created["response_id"],
                epoch=created["epoch"],
                last_seq=last_seq,
            )
            assert (await again.next("resume.result"))["recovered"] is True
            frames = await again.frames_of(created["response_id"])
            rest = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
            assert before + rest == FULL
            assert frames[-1]["status"] == "completed"
            assert len(upstream.requests) == 1
            await again.aclose()
