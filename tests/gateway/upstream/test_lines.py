"""Splitting streamed bodies into lines, whatever the read boundaries."""

from __future__ import annotations

import pytest

from gateway.upstream import LineDecoder
from gateway.upstream.errors import ProtocolError

BODY = b'{"a":1}\n{"b":"\xc3\xa9"}\r\n\r\n{"c":3}\r{"d":4}'


@pytest.mark.parametrize("size", [1, 2, 3, 5, len(BODY)])
def test_lines_are_the_same_for_any_read_size(size: int) -> None:
    decoder = LineDecoder()
    lines: list[bytes] = []
    for start in range(0, len(BODY), size):
        lines += decoder.feed(BODY[start : start + size])
    lines += decoder.flush()
    assert lines == [b'{"a":1}', b'{"b":"\xc3\xa9"}', b"", b'{"c":3}', b'{"d":4}']


def test_flush_returns_nothing_after_a_terminated_last_line() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"one\ntwo\n") == [b"one", b"two"]
    assert decoder.flush() == []


def test_a_line_beyond_the_limit_is_a_protocol_error() -> None:
    decoder = LineDecoder(max_line_bytes=10)
    assert decoder.feed(b"short\n" + b"x" * 10) == [b"short"]
    with pytest.raises(ProtocolError):
        decoder.feed(b"x")
