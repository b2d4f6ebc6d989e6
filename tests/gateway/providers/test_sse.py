"""The SSE parser shared by the OpenAI and Anthropic adapters: bytes in, events out."""

from __future__ import annotations

import pytest

from gateway.providers._sse import SseDecoder
from gateway.upstream.errors import ProtocolError


def _parse(*lines: str) -> list[tuple[str, bytes]]:
    decoder = SseDecoder()
    return decoder.feed("".join(f"{line}\n" for line in lines).encode())


def _parse_in_pieces(body: bytes, size: int) -> list[tuple[str, bytes]]:
    decoder = SseDecoder()
    events: list[tuple[str, bytes]] = []
    for start in range(0, len(body), size):
        events += decoder.feed(body[start : start + size])
    return events


def test_data_lines_with_and_without_space_and_event_names() -> None:
    events = _parse(
        'data: {"a":1}', "", "event: ping", "data:{}", "", "event:message_stop", "data: x", ""
    )
    assert events == [("message", b'{"a":1}'), ("ping", b"{}"), ("message_stop", b"x")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    events = _parse(": ping", "", "id: 7", "retry: 100", "data: [DONE]", "")
    assert events == [("message", b"[DONE]")]


def test_multi_line_data_is_joined_and_event_name_resets() -> None:
    events = _parse("event: e", "data: a", "data: b", "data: c", "", "data: d", "")
    assert events == [("e", b"a\nb\nc"), ("message", b"d")]


def test_event_cut_off_by_end_of_stream_is_dropped() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: whole\n\ndata: {"trunc') == [("message", b"whole")]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_events_split_across_reads_at_any_byte(size: int) -> None:
    body = 'event: e\ndata: {"t":"é€😀"}\n\n: keep-alive\n\ndata: [DONE]\n\n'.encode()
    assert _parse_in_pieces(body, size) == [
        ("e", '{"t":"é€😀"}'.encode()),
        ("message", b"[DONE]"),
    ]


@pytest.mark.parametrize("terminator", [b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 5, 100])
def test_crlf_and_lone_cr_line_endings(terminator: bytes, size: int) -> None:
    body = terminator.join([b"event: e", b"data: 1", b"", b"data: 2", b"", b""])
    assert _parse_in_pieces(body, size) == [("e", b"1"), ("message", b"2")]


def test_a_leading_byte_order_mark_is_skipped() -> None:
    assert SseDecoder().feed(b"\xef\xbb\xbfdata: x\n\n") == [("message", b"x")]


def test_an_endless_line_is_refused() -> None:
    decoder = SseDecoder()
    with pytest.raises(ProtocolError):
        for _ in range(5):
            decoder.feed(b"data: " + b"x" * (1024 * 1024))
