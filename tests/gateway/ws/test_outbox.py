"""The outbox alone: merging, ordering, the byte cap, the replay allowance, the writer."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import orjson
import pytest

from gateway.ws.outbox import MAX_MERGED_CHARS, Outbox
from sessions import Created, Delta, Done, ResponseMeta, ResumeResult, Status

pytestmark = pytest.mark.anyio

META = ResponseMeta(model="echo", provider="demo")


def frames(outbox: Outbox) -> list[dict[str, object]]:
    out = []
    for data, cost, credit in outbox.take():
        out.append(orjson.loads(data))
        outbox.sent(cost, credit)
    return out


def test_consecutive_deltas_of_one_response_merge_with_the_last_seq() -> None:
    outbox = Outbox(1 << 20)
    outbox.push(Created("r1", "q1", 7, META))
    for seq, text in enumerate(["a", "b", "c"], start=1):
        outbox.push(Delta("r1", seq, text))
    assert frames(outbox) == [
        {
            "type": "response.created",
            "response_id": "r1",
            "request_id": "q1",
            "model": "echo",
            "provider": "demo",
            "epoch": 7,
            "seq": 0,
        },
        {"type": "response.output_text.delta", "response_id": "r1", "seq": 3, "delta": "abc"},
    ]
    assert outbox.merged == 2
    assert outbox.nbytes == 0


def test_interleaved_responses_merge_separately_and_keep_their_own_order() -> None:
    outbox = Outbox(1 << 20)
    outbox.push(Delta("r1", 1, "a"))
    outbox.push(Delta("r2", 1, "x"))
    outbox.push(Delta("r1", 2, "b"))
    outbox.push(Done("r1", "q1", 3, Status.COMPLETED, finish_reason="stop"))
    outbox.push(Delta("r2", 2, "y"))
    got = frames(outbox)
    assert [(f["type"], f["response_id"], f["seq"]) for f in got] == [
        ("response.output_text.delta", "r1", 2),
        ("response.output_text.delta", "r2", 2),
        ("response.done", "r1", 3),
    ]
    assert got[0]["delta"] == "ab"
    assert got[1]["delta"] == "xy"


def test_a_delta_after_a_non_delta_event_is_never_merged_before_it() -> None:
    outbox = Outbox(1 << 20)
    outbox.push(Delta("r1", 1, "a"))
    outbox.push(ResumeResult("r1", True, 1))
    outbox.push(Delta("r1", 2, "b"))
    assert [f.get("delta") for f in frames(outbox)] == ["a", None, "b"]


def test_taken_frames_are_not_merged_into() -> None:
    outbox = Outbox(1 << 20)
    outbox.push(Delta("r1", 1, "a"))
    batch = outbox.take()
    outbox.push(Delta("r1", 2, "b"))
    assert [orjson.loads(d)["delta"] for d, _, _ in batch] == ["a"]
    assert [f["delta"] for f in frames(outbox)] == ["b"]


def test_merged_frames_stop_growing_at_the_limit() -> None:
    outbox = Outbox(1 << 22)
    chunk = "x" * 1000
    count = 3 * MAX_MERGED_CHARS // 1000
    for seq in range(1, count + 1):
        outbox.push(Delta("r1", seq, chunk))
    got = frames(outbox)
    assert all(len(str(f["delta"])) <= MAX_MERGED_CHARS for f in got)
    assert "".join(str(f["delta"]) for f in got) == chunk * count
    assert got[-1]["seq"] == count


def test_crossing_the_cap_drops_everything_and_closes_4013() -> None:
    outbox = Outbox(2048)
    outbox.push(Created("r1", "q1", 1, META))
    seq = 0
    while not outbox.overflowed:
        seq += 1
        outbox.push(Delta(f"r-{seq}", 1, "z" * 100))  # one per response: nothing merges
        assert outbox.peak_bytes <= 2048
    assert outbox.closing
    assert outbox.take() == []
    outbox.push(Delta("r1", 1, "late"))  # ignored from now on
    assert outbox.take() == []
    assert outbox.nbytes == 0


def test_replay_is_charged_to_its_own_allowance() -> None:
    outbox = Outbox(2048, replay_bytes=100_000)
    with outbox.replaying():
        for seq in range(1, 500):
            outbox.push(Delta(f"r{seq}", seq, "x" * 100))  # 80 KB, unmerged
    assert not outbox.overflowed
    assert outbox.nbytes == 0
    assert outbox.peak_replay_bytes > 2048
    outbox.push(Delta("live", 1, "y" * 100))  # live traffic still has the whole cap
    assert not outbox.overflowed
    frames(outbox)
    assert outbox.nbytes == 0


def test_replay_beyond_its_allowance_counts_against_the_cap() -> None:
    outbox = Outbox(2048, replay_bytes=1000)
    with outbox.replaying():
        for seq in range(1, 100):
            outbox.push(Delta(f"r{seq}", seq, "x" * 100))
    assert outbox.overflowed


async def test_writer_sends_in_order_then_closes() -> None:
    outbox = Outbox(1 << 20)
    sent: list[bytes] = []
    closed: list[tuple[int, str]] = []

    async def send(data: bytes) -> None:
        sent.append(data)
        await anyio.lowlevel.checkpoint()

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.run_writer, send, close)
        outbox.push_frame({"type": "pong", "ts": 1})
        outbox.push(Delta("r1", 1, "a"))
        outbox.close(1000)
        outbox.push_frame({"type": "pong", "ts": 2})  # after the close: dropped
    assert [orjson.loads(d)["type"] for d in sent] == ["pong", "response.output_text.delta"]
    assert closed == [(1000, "normal closure")]


async def test_overflow_interrupts_a_blocked_send() -> None:
    outbox = Outbox(4096)
    blocked = anyio.Event()
    closed: list[int] = []

    async def send(data: bytes) -> None:
        blocked.set()
        await anyio.sleep_forever()  # a client that never reads

    async def close(code: int, reason: str) -> None:
        closed.append(code)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(outbox.run_writer, send, close)
            outbox.push(Delta("r1", 1, "first"))
            await blocked.wait()
            for seq in range(2, 200):
                outbox.push(Delta("r1", seq, "x" * 100))
    assert closed == [4013]
    assert outbox.peak_bytes <= 4096
