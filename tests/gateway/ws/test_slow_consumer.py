"""Slow consumers over a real socket (#19): drain time, not frame size, decides 4013.

A client that reads promptly gets even a huge upstream chunk whole, split into
frames far under its own message-size limit; a client that really stops reading
is closed 4013 once the outbox has stayed over ``outbox_max_bytes`` for
``outbox_drain_timeout_ms``, and its upstream request is closed with it.
"""

from __future__ import annotations

import anyio
import pytest

from gateway.ws.outbox import HARD_CAP_FACTOR
from sessions import MAX_DELTA_CHARS
from tests.fakes import Scenario
from tests.fakes.base import FakeToolCall
from tests.gateway.ws._support import (
    SMALL_BUFFER,
    Frame,
    fake_upstream,
    gateway,
    only_outbox,
    stalled_client,
)

pytestmark = pytest.mark.anyio

MODEL = "openai/gpt-4o-mini"
TEXT = "response.output_text.delta"
# The ``websockets`` client's default ``max_size``: a larger frame makes it close 1009.
CLIENT_MAX_SIZE = 1024 * 1024
# 2 MiB of text in one upstream chunk, every 8 characters different (order is checked).
BIG = "".join(f"{i:08d}" for i in range(256 * 1024))
TOOLS = [
    {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object"}},
    }
    for name in ("lookup", "fetch")
]
ARGS = "response.function_call_arguments.delta"
ARGS_DONE = "response.function_call_arguments.done"


async def test_a_2mb_upstream_chunk_reaches_a_prompt_reader_whole_in_frames_under_its_limit() -> (
    None
):
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=["Start: ", BIG, " :end"]))
        async with gateway(**overrides) as gw:
            client = await gw.open(max_size=CLIENT_MAX_SIZE)
            raw_sizes: list[int] = []
            read = client.ws.recv

            async def recv_and_measure() -> str | bytes:
                data = await read()
                raw_sizes.append(len(data.encode() if isinstance(data, str) else data))
                return data

            client.ws.recv = recv_and_measure  # type: ignore[method-assign]
            rid = await client.create("hi", model=MODEL)
            got = await client.response(rid, within=10)
            assert got.text == "Start: " + BIG + " :end"
            assert got.done["status"] == "completed"
            assert len(got.deltas) >= len(BIG) // (64 * 1024)  # split, not one frame
            assert max(raw_sizes) < CLIENT_MAX_SIZE // 2  # well under the client's limit
            seqs = [d["seq"] for d in got.deltas]
            assert seqs == sorted(set(seqs))
            # The socket is still open and answering.
            await client.send("ping", ts=7)
            assert (await client.next("pong"))["ts"] == 7
            (record,) = upstream.requests
            assert record.outcome == "completed"
            await client.aclose()


async def test_a_client_that_stops_reading_gets_4013_at_the_drain_deadline_upstream_closed() -> (
    None
):
    drain_ms = 400
    cap = 64 * 1024
    # ~200 KB, paced so that the upstream is still sending when the deadline passes:
    # more than the cap, less than the hard cap, so only the drain deadline can end it.
    tokens = [f" {i:04d}" + "y" * 195 for i in range(1000)]
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=tokens, delay_s=0.005))
        async with gateway(
            outbox_max_bytes=cap,
            outbox_drain_timeout_ms=drain_ms,
            resume_window_ms=0,
            send_buffer=SMALL_BUFFER,
            **overrides,
        ) as gw:
            client = await stalled_client(gw)
            outbox = only_outbox(gw)
            await client.create("hi", model=MODEL)  # and never read again until the close
            (record,) = await upstream.wait_for_requests(1)
            with anyio.fail_after(5):
                await record.ended.wait()
            # The gateway hung up on the upstream because of the slow client, not at once.
            assert record.outcome == "disconnected"
            assert record.chunks_sent < len(tokens)
            assert record.ended_at is not None
            assert record.ended_at - record.started_at >= drain_ms / 1000
            assert outbox.overflowed
            assert cap < outbox.peak_bytes <= HARD_CAP_FACTOR * cap  # over the cap for a while
            assert await client.closed() == 4013
            text = "".join(f["delta"] for f in client.frames if f["type"] == TEXT)
            assert "".join(tokens).startswith(text)
            assert not any(f["type"] == "response.done" for f in client.frames)
            with anyio.fail_after(1):
                await gw.manager.wait_idle()


async def test_resume_in_the_middle_of_a_split_delta_gives_every_piece_exactly_once() -> None:
    full = "Start: " + BIG + " :end"
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=["Start: ", BIG, " :end"]))
        async with gateway(
            resume_window_ms=10_000, replay_max_bytes=8 * 1024 * 1024, **overrides
        ) as gw:
            client = await gw.open(max_size=CLIENT_MAX_SIZE)
            rid = await client.create("hi", model=MODEL)
            created = await client.next("response.created", lambda f: f["request_id"] == rid)
            response_id = created["response_id"]
            # Read into the big delta, a few of its pieces, then drop the socket.
            before: list[Frame] = []
            while sum(len(f["delta"]) for f in before) < len("Start: ") + 3 * MAX_DELTA_CHARS:
                before.append(await client.next(TEXT))
            last_seq = before[-1]["seq"]
            await client.aclose()

            again = await gw.open(max_size=CLIENT_MAX_SIZE)
            result = await again.resume(created, last_seq)
            assert result["recovered"] is True
            assert result["from_seq"] == last_seq + 1
            after = await again.frames_of(response_id)
            assert after[-1]["type"] == "response.done"
            assert after[-1]["status"] == "completed"
            deltas = before + [f for f in after if f["type"] == TEXT]
            assert after[0]["seq"] == last_seq + 1
            seqs = [f["seq"] for f in deltas]
            assert seqs == sorted(set(seqs))  # nothing twice
            assert "".join(f["delta"] for f in deltas) == full  # nothing lost
            assert all(len(f["delta"]) <= MAX_DELTA_CHARS for f in deltas)
            assert len(upstream.requests) == 1
            await again.aclose()


async def test_a_slow_reader_over_the_cap_keeps_parallel_tool_calls_apart_and_exact() -> None:
    """#11: merging under backpressure never joins pieces of different calls, nor text
    with arguments; each call's pieces concatenate to exactly its arguments."""
    text_tokens = [f" t{i:03d}" + "x" * 1000 for i in range(700)]
    calls = [
        FakeToolCall(
            "lookup",
            ['{"query": "', *(f"a{i:03d}" + "a" * 500 for i in range(100)), '"}'],
            id="call_a",
        ),
        FakeToolCall(
            "fetch",
            ['{"url": "', *(f"b{i:03d}" + "b" * 500 for i in range(100)), '"}'],
            id="call_b",
        ),
    ]
    # The answer is ~900 KB (the calls' done frames repeat their arguments), of which
    # a few hundred KB vanish into socket and client buffers: the rest is over the cap,
    # under the hard cap. The text comes first, so the calls' pieces queue behind it.
    cap = 256 * 1024
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=text_tokens, tool_calls=calls))
        async with gateway(
            outbox_max_bytes=cap,
            outbox_drain_timeout_ms=30_000,
            send_buffer=SMALL_BUFFER,
            **overrides,
        ) as gw:
            client = await stalled_client(gw)
            outbox = only_outbox(gw)
            rid = await client.create("hi", model=MODEL, tools=TOOLS)
            # The client pauses reading until the whole answer is produced and waits in
            # the outbox, over its cap.
            with anyio.fail_after(10):
                (record,) = await upstream.wait_for_requests(1)
                await record.ended.wait()
                await gw.manager.wait_for(lambda: gw.manager.active_responses == 0)
            assert record.outcome == "completed"
            assert outbox.draining
            assert outbox.nbytes > cap
            got = await client.response(rid, within=10)
            assert got.done["status"] == "completed"
            assert got.done["finish_reason"] == "tool_calls"
            assert got.text == "".join(text_tokens)
            assert len(got.deltas) < len(text_tokens)  # text did merge under backpressure
            frames = [f for f in client.frames if f.get("response_id") == got.response_id]
            seqs = [f["seq"] for f in frames]
            assert seqs == sorted(set(seqs))
            pieces = [f for f in frames if f["type"] == ARGS]
            for index, call in enumerate(calls):
                own = [p for p in pieces if p["output_index"] == index]
                assert {p["call_id"] for p in own} == {call.id}
                # Never joined with anything: each frame is one piece of its own call.
                assert [p["delta"] for p in own] == call.arguments
                (done,) = [f for f in frames if f["type"] == ARGS_DONE and f["call_id"] == call.id]
                assert done["arguments"] == call.whole_arguments
            assert not any(
                f["type"] == TEXT and ("a" * 400 in f["delta"] or "b" * 400 in f["delta"])
                for f in frames
            )
            assert not outbox.overflowed
            assert not outbox.draining  # drained below the cap in time
            assert cap < outbox.peak_bytes <= HARD_CAP_FACTOR * cap
            await client.aclose()
