"""Each adapter's sans-I/O decoder on recorded wire transcripts (``tests/fixtures/``).

Every transcript is fed whole and split at every possible byte boundary into
two pieces (and byte by byte): the events must not depend on how reads cut it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import UpstreamError
from gateway.providers.anthropic.decode import StreamDecoder as AnthropicDecoder
from gateway.providers.base import (
    Finish,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageSoFar,
)
from gateway.providers.ollama.decode import StreamDecoder as OllamaDecoder
from gateway.providers.openai.decode import StreamDecoder as OpenAIDecoder

FIXTURES = Path(__file__).parents[2] / "fixtures"


def splits(raw: bytes) -> list[list[bytes]]:
    """Whole, byte by byte, and every cut into two pieces."""
    return [[raw], [raw[i : i + 1] for i in range(len(raw))]] + [
        [raw[:i], raw[i:]] for i in range(1, len(raw), 7)
    ]


def run_sse(decoder: Any, pieces: list[bytes]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.append(decoder.end())
    return events


def run_ndjson(decoder: OllamaDecoder, pieces: list[bytes]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.end())
    decoder.raise_error()
    return events


def test_openai_parallel_tool_calls_interleaved() -> None:
    raw = (FIXTURES / "openai" / "tool_calls.sse").read_bytes()
    expected = [
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallDelta(0, '{"city"'),
        ToolCallStart(1, "call_b", "get_time"),
        ToolCallDelta(0, ': "Paris"}'),
        ToolCallDelta(1, "{}"),
        Finish("tool_calls", Usage(20, 9)),
    ]
    for pieces in splits(raw):
        assert run_sse(OpenAIDecoder(), pieces) == expected


def test_openai_refusal_pieces_are_refusal_events() -> None:
    # A structured-output refusal: the first delta has "refusal": "" and no content.
    raw = (FIXTURES / "openai" / "refusal.sse").read_bytes()
    expected = [
        RefusalDelta("I'm sorry, "),
        RefusalDelta("I can't help with that."),
        Finish("stop", Usage(12, 8)),
    ]
    for pieces in splits(raw):
        assert run_sse(OpenAIDecoder(), pieces) == expected


def test_anthropic_thinking_text_and_two_tool_blocks() -> None:
    raw = (FIXTURES / "anthropic" / "tool_use.sse").read_bytes()
    expected = [
        UsageSoFar(Usage(30, None)),  # with the first output, not on its own
        ReasoningDelta("Two tools."),
        TextDelta("Checking."),
        # Block indexes 2 and 3 become tool call indexes 0 and 1.
        ToolCallStart(0, "toolu_01", "get_weather"),
        ToolCallDelta(0, '{"city": "Pa'),
        ToolCallDelta(0, 'ris"}'),
        ToolCallStart(1, "toolu_02", "get_time"),
        ToolCallDelta(1, "{}"),
        Finish("tool_calls", Usage(30, 42)),
    ]
    for pieces in splits(raw):
        assert run_sse(AnthropicDecoder(), pieces) == expected


def test_ollama_whole_tool_calls_get_one_start_and_one_piece_each() -> None:
    raw = (FIXTURES / "ollama" / "tool_calls.ndjson").read_bytes()
    ids = iter(f"call_{n}" for n in range(1000))
    for pieces in splits(raw):
        decoder = OllamaDecoder(make_id=lambda: next(ids))
        events = run_ndjson(decoder, pieces)
        starts = [e for e in events if isinstance(e, ToolCallStart)]
        assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
        assert starts[0].call_id != starts[1].call_id
        assert [e for e in events if isinstance(e, ToolCallDelta)] == [
            ToolCallDelta(0, '{"city":"Paris"}'),
            ToolCallDelta(1, "{}"),
        ]
        assert events[0] == ReasoningDelta("Need two tools.")
        assert events[-1] == Finish("tool_calls", Usage(25, 12))


@pytest.mark.parametrize(
    ("make", "name", "run", "text", "retryable"),
    [
        (OpenAIDecoder, "openai/error.sse", run_sse, "Hel", True),
        (AnthropicDecoder, "anthropic/error.sse", run_sse, "Hi", True),
        (OllamaDecoder, "ollama/error.ndjson", run_ndjson, "Hi", True),
    ],
)
def test_error_event_raises_after_the_text_before_it(
    make: Callable[[], Any], name: str, run: Any, text: str, retryable: bool
) -> None:
    raw = (FIXTURES / name).read_bytes()
    for pieces in splits(raw):
        decoder = make()
        seen: list[StreamEvent] = []
        with pytest.raises(UpstreamError) as caught:
            for piece in pieces:
                seen.extend(decoder.feed(piece))
            run(decoder, [])
        # (Anthropic's input tokens come first: tested with the tool fixture.)
        assert [e for e in seen if not isinstance(e, UsageSoFar)] == [TextDelta(text)]
        assert caught.value.retryable is retryable


@pytest.mark.parametrize("make", [OpenAIDecoder, AnthropicDecoder])
def test_a_cut_stream_is_an_error(make: Callable[[], Any]) -> None:
    decoder = make()
    decoder.feed(b'data: {"choices": []}\n\n')
    with pytest.raises(UpstreamError, match="ended before"):
        decoder.end()
