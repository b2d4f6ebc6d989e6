"""The SSE line parser shared by the OpenAI and Anthropic adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.providers._sse import iter_sse

pytestmark = pytest.mark.anyio


async def _parse(*lines: str) -> list[tuple[str, str]]:
    async def source() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return [pair async for pair in iter_sse(source())]


async def test_data_lines_with_and_without_space_and_event_names() -> None:
    events = await _parse(
        'data: {"a":1}', "", "event: ping", "data:{}", "", "event:message_stop", "data: x", ""
    )
    assert events == [("message", '{"a":1}'), ("ping", "{}"), ("message_stop", "x")]


async def test_comments_and_unknown_fields_are_ignored() -> None:
    events = await _parse(": ping", "", "id: 7", "retry: 100", "data: [DONE]", "")
    assert events == [("message", "[DONE]")]


async def test_multi_line_data_is_joined_and_event_name_resets() -> None:
    events = await _parse("event: e", "data: a", "data: b", "data: c", "", "data: d", "")
    assert events == [("e", "a\nb\nc"), ("message", "d")]


async def test_event_cut_off_by_end_of_stream_is_dropped() -> None:
    assert await _parse("data: whole", "", 'data: {"trunc') == [("message", "whole")]
