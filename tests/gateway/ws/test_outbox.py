"""The outbox alone: merging, ordering, the byte cap, the replay allowance, the writer."""

from __future__ import annotations

import anyio
import anyio.abc
import anyio.lowlevel
import orjson
import pytest

from gateway.ws.outbox import HARD_CAP_FACTOR, MAX_MERGED_CHARS, Outbox
from sessions import Created, Delta, Done, ResponseMeta, ResumeResult, Status
from sessions.events import ReasoningDelta, ToolArgumentsDelta, ToolCallAdded

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


def test_tool_and_reasoning_frames_never_merge_with_each_other_or_with_text() -> None:
    outbox = Outbox(1 << 20)
    outbox.push(Delta("r1", 1, "a"))
    outbox.push(ReasoningDelta("r1", 2, "hm"))
    outbox.push(ReasoningDelta("r1", 3, "m"))
    outbox.push(ToolCallAdded("r1", 4, 0, "c0", "f"))
    outbox.push(ToolCallAdded("r1", 5, 1, "c1", "g"))
    outbox.push(ToolArgumentsDelta("r1", 6, 0, '{"x"', "c0"))
    outbox.push(ToolArgumentsDelta("r1", 7, 1, '{"y"', "c1"))
    outbox.push(ToolArgumentsDelta("r1", 8, 0, ": 1}", "c0"))
    outbox.push(Delta("r1", 9, "b"))
    outbox.push(Delta("r1", 10, "c"))
    got = frames(outbox)
    assert [(f["seq"], f.get("delta")) for f in got] == [
        (1, "a"),
        (2, "hm"),
        (3, "m"),
        (4, None),
        (5, None),
        (6, '{"x"'),
        (7, '{"y"'),
        (8, ": 1}"),
        (10, "bc"),  # text after them merges again, into a frame of its own
    ]
    assert outbox.merged == 1


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


async def test_crossing_the_cap_starts_the_drain_deadline_and_draining_lifts_it() -> None:
    outbox = Outbox(2048, drain_s=60)
    seq = 0
    while outbox.nbytes <= 2048:
        seq += 1
        outbox.push(Delta(f"r-{seq}", 1, "z" * 100))  # one per response: nothing merges
    assert outbox.draining  # over the cap: not closed, on the clock
    assert not outbox.overflowed
    assert not outbox.closing
    taken = outbox.take()
    for _, cost, credit in taken[:2]:
        outbox.sent(cost, credit)
    assert outbox.nbytes <= 2048
    assert not outbox.draining  # the client read: the deadline is lifted
    for _, cost, credit in taken[2:]:
        outbox.sent(cost, credit)
    assert outbox.nbytes == 0


async def test_crossing_the_hard_cap_drops_everything_and_closes_4013_at_once() -> None:
    outbox = Outbox(2048, drain_s=60)
    outbox.push(Created("r1", "q1", 1, META))
    seq = 0
    while not outbox.overflowed:
        seq += 1
        outbox.push(Delta(f"r-{seq}", 1, "z" * 100))  # one per response: nothing merges
        assert outbox.peak_bytes <= HARD_CAP_FACTOR * 2048
    assert outbox.peak_bytes > 2048
    assert outbox.closing
    assert outbox.take() == []
    outbox.push(Delta("r1", 1, "late"))  # ignored from now on
    assert outbox.take() == []
    assert outbox.nbytes == 0


async def test_replay_is_charged_to_its_own_allowance() -> None:
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


async def test_replay_beyond_its_allowance_counts_against_the_cap() -> None:
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
    assert outbox.peak_bytes <= HARD_CAP_FACTOR * 4096


async def test_a_writer_still_over_the_cap_at_the_drain_deadline_closes_4013() -> None:
    outbox, client = Outbox(4096, drain_s=0.05), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            client.gate = anyio.Event()  # never set: a client that stopped reading
            started = anyio.current_time()
            for seq in range(1, 60):
                outbox.push(Delta(f"r{seq}", 1, "x" * 100))  # over the cap, under the hard cap
            assert outbox.draining
            assert not outbox.closing
    assert anyio.current_time() - started >= 0.045  # uvloop's clock counts milliseconds
    assert client.closed == [4013]
    assert client.abandoned == 1  # cut off mid-send
    assert outbox.overflowed
    assert outbox.peak_bytes < HARD_CAP_FACTOR * 4096


async def test_a_zero_drain_timeout_closes_4013_as_soon_as_the_writer_is_over_the_cap() -> None:
    outbox, client = Outbox(4096, drain_s=0), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            client.gate = anyio.Event()  # never set
            for seq in range(1, 60):
                outbox.push(Delta(f"r{seq}", 1, "x" * 100))
            await anyio.lowlevel.checkpoint()
    assert client.closed == [4013]
    assert outbox.peak_bytes < HARD_CAP_FACTOR * 4096  # the deadline closed it, not the hard cap


async def test_a_writer_that_drains_in_time_is_not_closed() -> None:
    outbox, client = Outbox(4096, drain_s=0.2), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            client.gate = gate = anyio.Event()
            for seq in range(1, 60):
                outbox.push(Delta(f"r{seq}", 1, "x" * 100))
            assert outbox.draining
            client.gate = None
            gate.set()  # the client reads again, well before the deadline
            while outbox.nbytes:
                await anyio.lowlevel.checkpoint()
            assert not outbox.draining
            await anyio.sleep(0.3)  # past where the deadline was: nothing happens
            assert not outbox.closing
            outbox.close(1000)
    assert client.closed == [1000]
    assert len(client.sent) == 59
    assert not outbox.overflowed


# --- deltas sent at once by the pushing task -------------------------------------------------


class _Client:
    """The writer's ``send``/``close``; ``gate`` (while set) holds sends, like a paused
    transport does before the server writes."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.closed: list[int] = []
        self.gate: anyio.Event | None = None
        self.abandoned = 0
        self.fail_with: Exception | None = None

    async def send(self, data: bytes) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        gate = self.gate
        if gate is not None:
            try:
                await gate.wait()
            except BaseException:
                self.abandoned += 1
                raise
        self.sent.append(orjson.loads(data))

    async def close(self, code: int, reason: str) -> None:
        self.closed.append(code)

    def deltas(self) -> list[object]:
        return [f.get("delta", f["type"]) for f in self.sent]


async def _idle_writer(tg: anyio.abc.TaskGroup, outbox: Outbox, client: _Client) -> None:
    tg.start_soon(outbox.run_writer, client.send, client.close)
    await anyio.lowlevel.checkpoint()  # the writer runs up to its first wait


async def test_a_delta_for_an_idle_writer_is_sent_before_the_pushing_task_yields() -> None:
    outbox, client = Outbox(1 << 20), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            outbox.push(Delta("r1", 1, "a"))
            assert client.deltas() == ["a"]  # no await in between: sent by this task
            assert outbox.nbytes == 0
            outbox.close(1000)
    assert outbox.frames_sent == 1


async def test_later_deltas_of_the_same_turn_queue_and_merge() -> None:
    outbox, client = Outbox(1 << 20), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            for seq, text in enumerate("abc", start=1):
                outbox.push(Delta("r1", seq, text))
            assert client.deltas() == ["a"]
            await anyio.lowlevel.checkpoint()  # the writer takes the rest, merged
            assert client.deltas() == ["a", "bc"]
            assert client.sent[-1]["seq"] == 3
            await anyio.lowlevel.checkpoint()  # a new turn, the writer idle again
            outbox.push(Delta("r1", 4, "d"))
            assert client.deltas() == ["a", "bc", "d"]
            outbox.close(1000)


async def test_replayed_deltas_are_not_sent_at_once() -> None:
    outbox, client = Outbox(1 << 20, replay_bytes=1 << 20), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            with outbox.replaying():
                for seq, text in enumerate("abc", start=1):
                    outbox.push(Delta("r1", seq, text))
            assert client.sent == []
            outbox.close(1000)
    assert client.deltas() == ["abc"]


async def test_a_send_that_suspends_is_finished_by_the_writer_first() -> None:
    outbox, client = Outbox(1 << 20), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            client.gate = gate = anyio.Event()
            outbox.push(Delta("r1", 1, "a"))  # suspends: handed to the writer
            assert outbox.nbytes > 0  # still charged while in flight
            await anyio.lowlevel.checkpoint()
            outbox.push(Delta("r2", 1, "x"))
            outbox.push_frame({"type": "pong", "ts": 1})
            client.gate = None
            gate.set()
            outbox.close(1000)
    assert client.deltas() == ["a", "x", "pong"]
    assert outbox.nbytes == 0
    assert client.closed == [1000]


async def test_a_suspended_send_cut_off_by_an_overflow_is_abandoned() -> None:
    outbox, client = Outbox(4096), _Client()
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await _idle_writer(tg, outbox, client)
            client.gate = anyio.Event()  # never set: a client that stopped reading
            outbox.push(Delta("r1", 1, "first"))
            await anyio.lowlevel.checkpoint()
            for seq in range(2, 200):
                outbox.push(Delta("r1", seq, "x" * 100))
    assert client.abandoned == 1
    assert client.sent == []
    assert client.closed == [4013]


async def test_a_send_that_fails_at_once_ends_the_writer_with_its_error() -> None:
    outbox, client = Outbox(1 << 20), _Client()
    failed: list[BaseException] = []

    async def writer() -> None:
        try:
            await outbox.run_writer(client.send, client.close)
        except OSError as exc:
            failed.append(exc)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            await anyio.lowlevel.checkpoint()
            client.fail_with = ConnectionResetError("peer gone")
            outbox.push(Delta("r1", 1, "a"))  # must not raise into the pushing task
    assert [type(exc) for exc in failed] == [ConnectionResetError]
