from __future__ import annotations

import pytest

from sessions import EVENT_OVERHEAD_BYTES, Delta, ReplayBuffer


def _fill(buffer: ReplayBuffer, first: int, last: int, text: str = "x") -> int:
    return sum(buffer.append(Delta("r", seq, text)) for seq in range(first, last + 1))


def test_since_returns_exactly_the_events_after_last_seq() -> None:
    buffer = ReplayBuffer(100, 10_000, start_seq=1)
    _fill(buffer, 1, 5)
    assert [e.seq for e in buffer.since(0) or []] == [1, 2, 3, 4, 5]
    assert [e.seq for e in buffer.since(3) or []] == [4, 5]
    assert buffer.since(5) == []


def test_empty_buffer_is_caught_up_at_start_and_rejects_the_future() -> None:
    buffer = ReplayBuffer(10, 1000, start_seq=1)
    assert buffer.since(0) == []
    assert buffer.since(1) is None
    _fill(buffer, 1, 2)
    assert buffer.since(3) is None  # a seq never emitted


def test_seq_before_start_is_not_held() -> None:
    buffer = ReplayBuffer(10, 1000, start_seq=1)
    _fill(buffer, 1, 2)
    assert buffer.since(-1) is None


def test_event_bound_evicts_oldest_and_since_reports_the_loss() -> None:
    buffer = ReplayBuffer(3, 10_000, start_seq=1)
    assert _fill(buffer, 1, 5) == 2
    assert len(buffer) == 3
    assert buffer.evicted == 2
    assert buffer.first_seq == 3
    assert buffer.since(1) is None  # seq 2 is gone
    assert [e.seq for e in buffer.since(2) or []] == [3, 4, 5]


def test_byte_bound_evicts_and_accounts_bytes() -> None:
    per_event = EVENT_OVERHEAD_BYTES + 10
    buffer = ReplayBuffer(1000, per_event * 3, start_seq=1)
    _fill(buffer, 1, 3, "0123456789")
    assert buffer.evicted == 0
    assert buffer.nbytes == per_event * 3
    assert buffer.append(Delta("r", 4, "0123456789")) == 1
    assert buffer.nbytes == per_event * 3
    assert buffer.first_seq == 2


def test_newest_event_is_kept_even_when_larger_than_the_byte_bound() -> None:
    buffer = ReplayBuffer(1000, EVENT_OVERHEAD_BYTES * 2, start_seq=1)
    _fill(buffer, 1, 1)
    assert buffer.append(Delta("r", 2, "y" * 10_000)) == 1
    assert [e.seq for e in buffer.since(1) or []] == [2]
    assert buffer.nbytes == EVENT_OVERHEAD_BYTES + 10_000


def test_out_of_order_append_is_refused() -> None:
    buffer = ReplayBuffer(10, 1000, start_seq=1)
    _fill(buffer, 1, 2)
    with pytest.raises(ValueError):
        buffer.append(Delta("r", 4, "gap"))
    with pytest.raises(ValueError):
        buffer.append(Delta("r", 2, "dup"))


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReplayBuffer(0, 10)


def test_held_deltas_are_not_tracked_by_the_garbage_collector() -> None:
    # Thousands of retained deltas per response must not lengthen full GC pauses.
    import gc

    buffer = ReplayBuffer(100, 10_000, start_seq=1)
    _fill(buffer, 1, 50)
    held = gc.get_referents(buffer._events)
    assert held and not any(gc.is_tracked(item) for item in held)
    replayed = buffer.since(48) or []
    assert [(e.response_id, e.seq, e.text) for e in replayed] == [("r", 49, "x"), ("r", 50, "x")]
