"""One huge upstream piece becomes several events of at most MAX_DELTA_CHARS (#19)."""

from __future__ import annotations

import pytest

from sessions import MAX_DELTA_CHARS, Delta, Reason, Response, ResponseMeta, Status
from sessions.events import ReasoningDelta, SinkEvent, ToolArgumentsDelta

pytestmark = pytest.mark.anyio

BIG = "".join(f"{i:08d}" for i in range(3 * MAX_DELTA_CHARS // 8 + 5))  # 3 pieces and a bit


class _Sink:
    def __init__(self) -> None:
        self.events: list[SinkEvent] = []

    def push(self, event: SinkEvent) -> None:
        self.events.append(event)


def _overflowed(response: Response) -> None:
    # As the manager does: a detached response that lost events ends there.
    response.finish(Status.CANCELLED, Reason.BUFFER_OVERFLOW)


def _response(replay_bytes: int = 1 << 24) -> Response:
    return Response(
        request_id="q1",
        principal="p",
        conversation_id=None,
        meta=ResponseMeta(model="echo", provider="demo"),
        epoch=1,
        replay_max_events=1000,
        replay_max_bytes=replay_bytes,
        on_overflow=_overflowed,
    )


async def test_a_huge_text_delta_is_split_into_pieces_with_seqs_of_their_own() -> None:
    response, sink = _response(), _Sink()
    response.attach(sink, "s1")
    response.emit_delta("a")
    response.emit_delta(BIG)
    response.emit_delta("z")
    deltas = [e for e in sink.events if isinstance(e, Delta)]
    assert [e.seq for e in deltas] == list(range(1, 7))  # a, 4 pieces, z
    assert [len(e.text) for e in deltas[1:5]] == [MAX_DELTA_CHARS] * 3 + [40]
    assert "".join(e.text for e in deltas) == "a" + BIG + "z"
    # The replay buffer holds the very same pieces: a resume between two is exact.
    replayed = response.replay(2) or []
    assert replayed == deltas[2:]


async def test_a_delta_of_exactly_the_limit_stays_whole() -> None:
    response, sink = _response(), _Sink()
    response.attach(sink, "s1")
    response.emit_delta("x" * MAX_DELTA_CHARS)
    assert [len(e.text) for e in sink.events if isinstance(e, Delta)] == [MAX_DELTA_CHARS]


async def test_huge_reasoning_and_tool_arguments_are_split_likewise() -> None:
    response, sink = _response(), _Sink()
    response.attach(sink, "s1")
    response.emit_reasoning(BIG)
    response.emit_tool_call(0, "call_1", "lookup")
    response.emit_tool_arguments(0, BIG, "call_1")
    reasoning = [e for e in sink.events if isinstance(e, ReasoningDelta)]
    arguments = [e for e in sink.events if isinstance(e, ToolArgumentsDelta)]
    assert "".join(e.text for e in reasoning) == BIG
    assert "".join(e.delta for e in arguments) == BIG
    assert all(len(e.text) <= MAX_DELTA_CHARS for e in reasoning)
    assert all(len(e.delta) <= MAX_DELTA_CHARS for e in arguments)
    assert {(e.index, e.call_id) for e in arguments} == {(0, "call_1")}
    assert [e.seq for e in sink.events] == list(range(1, len(sink.events) + 1))


async def test_a_detached_response_whose_buffer_overflows_mid_split_stops_emitting() -> None:
    response = _response(replay_bytes=MAX_DELTA_CHARS + 1000)
    response.emit_delta("seen")
    response.detach()  # the client saw seq 1
    response.emit_delta(BIG)  # the second piece (seq 3) evicts seqs 1 and 2: lost for good
    assert response.done is not None
    assert response.done.seq == 4  # ended right after the piece that overflowed
    assert response.done.reason == Reason.BUFFER_OVERFLOW
    assert response.seq == 4
    assert response.buffer.next_seq == 5  # no piece came after the Done
