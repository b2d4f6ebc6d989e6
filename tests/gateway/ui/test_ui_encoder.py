"""The UI Message Stream encoder on its own: session events in, the SDK's parts out.

The shapes are the ``uiMessageChunkSchema`` of the installed ``ai`` package;
web-demo/test/ui-stream validates the same streams with the package itself.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import UpstreamError
from gateway.ui.encoder import DONE_LINE, UIStreamEncoder
from sessions import Created, Delta, Done, ResponseMeta, SinkEvent, Status
from sessions.events import ReasoningDelta, ToolArgumentsDelta, ToolCallAdded, ToolCallDone

RID = "resp_1"
Part = dict[str, Any]


def parts(events: list[SinkEvent], message_id: str | None = None) -> list[Part]:
    """Every part the events make, in order; the stream must end with ``[DONE]``."""
    encoder = UIStreamEncoder(message_id)
    data = b"".join(encoder.encode(e) for e in events)
    assert data.endswith(DONE_LINE)
    assert encoder.ended
    body = data[: -len(DONE_LINE)]
    return [orjson.loads(chunk.removeprefix(b"data: ")) for chunk in body.split(b"\n\n") if chunk]


def created() -> Created:
    return Created(RID, "ui_1", 1, ResponseMeta("m", "p"))


def done(status: Status = Status.COMPLETED, **kw: Any) -> Done:
    return Done(RID, "ui_1", 99, status, **kw)


def added(index: int, call_id: str, name: str = "lookup") -> ToolCallAdded:
    return ToolCallAdded(RID, 0, index, call_id, name)


def args(index: int, delta: str, call_id: str = "") -> ToolArgumentsDelta:
    return ToolArgumentsDelta(RID, 0, index, delta, call_id)


def call_done(index: int, call_id: str, arguments: str, name: str = "lookup") -> ToolCallDone:
    return ToolCallDone(RID, 0, index, call_id, name, arguments)


def without_start(got: list[Part]) -> list[Part]:
    assert got[0]["type"] == "start" and got[1] == {"type": "start-step"}
    return got[2:]


def test_reasoning_then_text_are_two_blocks_each_closed_before_the_next() -> None:
    got = parts(
        [
            created(),
            ReasoningDelta(RID, 1, "let me"),
            ReasoningDelta(RID, 2, " think"),
            Delta(RID, 3, "It is"),
            Delta(RID, 4, " 4."),
            done(finish_reason="stop"),
        ]
    )
    assert without_start(got)[:8] == [
        {"type": "reasoning-start", "id": "reasoning-0"},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "let me"},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": " think"},
        {"type": "reasoning-end", "id": "reasoning-0"},
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "It is"},
        {"type": "text-delta", "id": "text-1", "delta": " 4."},
        {"type": "text-end", "id": "text-1"},
    ]
    assert [p["type"] for p in got[-2:]] == ["finish-step", "finish"]


def test_text_reasoning_text_alternates_with_fresh_ids_and_empty_pieces_send_nothing() -> None:
    got = without_start(
        parts(
            [
                created(),
                Delta(RID, 1, "a"),
                ReasoningDelta(RID, 2, ""),  # nothing: the text block stays open
                Delta(RID, 3, "b"),
                ReasoningDelta(RID, 4, "r"),
                Delta(RID, 5, "c"),
                done(),
            ]
        )
    )
    assert [(p["type"], p.get("id")) for p in got[:-2]] == [
        ("text-start", "text-0"),
        ("text-delta", "text-0"),
        ("text-delta", "text-0"),
        ("text-end", "text-0"),
        ("reasoning-start", "reasoning-1"),
        ("reasoning-delta", "reasoning-1"),
        ("reasoning-end", "reasoning-1"),
        ("text-start", "text-2"),
        ("text-delta", "text-2"),
        ("text-end", "text-2"),
    ]


def test_two_interleaved_calls_after_text_finish_with_tool_calls_and_usage() -> None:
    got = without_start(
        parts(
            [
                created(),
                Delta(RID, 1, "Looking up."),
                added(0, "call_a", "weather"),
                args(0, '{"city": ', "call_a"),
                added(1, "call_b", "clock"),
                args(1, "{}", "call_b"),
                args(0, '"Oslo"}', "call_a"),
                call_done(0, "call_a", '{"city": "Oslo"}', "weather"),
                call_done(1, "call_b", "{}", "clock"),
                done(finish_reason="tool_calls", input_tokens=5, output_tokens=7),
            ]
        )
    )
    assert got == [
        {"type": "text-start", "id": "text-0"},
        {"type": "text-delta", "id": "text-0", "delta": "Looking up."},
        {"type": "text-end", "id": "text-0"},
        {"type": "tool-input-start", "toolCallId": "call_a", "toolName": "weather"},
        {"type": "tool-input-delta", "toolCallId": "call_a", "inputTextDelta": '{"city": '},
        {"type": "tool-input-start", "toolCallId": "call_b", "toolName": "clock"},
        {"type": "tool-input-delta", "toolCallId": "call_b", "inputTextDelta": "{}"},
        {"type": "tool-input-delta", "toolCallId": "call_a", "inputTextDelta": '"Oslo"}'},
        {
            "type": "tool-input-available",
            "toolCallId": "call_a",
            "toolName": "weather",
            "input": {"city": "Oslo"},
        },
        {"type": "tool-input-available", "toolCallId": "call_b", "toolName": "clock", "input": {}},
        {"type": "finish-step"},
        {
            "type": "finish",
            "finishReason": "tool-calls",
            "messageMetadata": {
                "finishReason": "tool_calls",
                "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12},
            },
        },
    ]


def test_a_piece_names_its_call_by_index_even_without_the_call_id() -> None:
    got = without_start(
        parts([created(), added(0, "call_x"), args(0, '{"q"'), args(0, ""), done()])
    )
    deltas = [p for p in got if p["type"] == "tool-input-delta"]
    assert deltas == [
        {"type": "tool-input-delta", "toolCallId": "call_x", "inputTextDelta": '{"q"'}
    ]


@pytest.mark.parametrize("arguments", ["", "  "])
def test_no_arguments_at_all_are_an_empty_object(arguments: str) -> None:
    got = parts([created(), added(0, "c"), call_done(0, "c", arguments), done()])
    (available,) = [p for p in got if p["type"] == "tool-input-available"]
    assert available["input"] == {}


@pytest.mark.parametrize("arguments", ['{"city": "Os', "[1, 2]", '"text"', "nul"])
def test_arguments_that_are_no_json_object_are_a_tool_input_error(arguments: str) -> None:
    got = parts(
        [created(), added(0, "c"), args(0, arguments), call_done(0, "c", arguments), done()]
    )
    kinds = [p["type"] for p in got]
    assert "tool-input-available" not in kinds
    (error,) = [p for p in got if p["type"] == "tool-input-error"]
    assert error["toolCallId"] == "c" and error["toolName"] == "lookup"
    assert error["input"] == arguments  # the raw text, as the SDK itself reports it
    assert "JSON object" in error["errorText"]
    # The answer itself still finished.
    assert kinds[-2:] == ["finish-step", "finish"]


def test_a_call_done_without_its_start_is_still_started_first() -> None:
    got = without_start(parts([created(), call_done(0, "c", '{"a": 1}'), done()]))
    assert [p["type"] for p in got[:2]] == ["tool-input-start", "tool-input-available"]


@pytest.mark.parametrize(
    ("ending", "last"),
    [
        (done(Status.CANCELLED, reason="client_cancelled"), "abort"),
        (done(Status.FAILED, error=UpstreamError("upstream failed")), "error"),
    ],
)
def test_a_call_cut_off_mid_arguments_ends_as_an_error_before_the_end(
    ending: Done, last: str
) -> None:
    got = without_start(
        parts(
            [
                created(),
                ReasoningDelta(RID, 1, "hm"),
                added(0, "c1"),
                args(0, '{"q": "par'),
                added(1, "c2"),
                call_done(1, "c2", "{}"),  # a whole call is not cut off
                ending,
            ]
        )
    )
    kinds = [p["type"] for p in got]
    assert kinds[:3] == ["reasoning-start", "reasoning-delta", "reasoning-end"]
    (error,) = [p for p in got if p["type"] == "tool-input-error"]
    assert error["toolCallId"] == "c1"
    assert error["input"] == '{"q": "par'
    assert kinds[-2:] == ["tool-input-error", last]


def test_an_open_reasoning_block_is_closed_by_a_tool_call_and_by_the_end() -> None:
    got = without_start(
        parts(
            [
                created(),
                ReasoningDelta(RID, 1, "a"),
                added(0, "c"),
                call_done(0, "c", "{}"),
                ReasoningDelta(RID, 2, "b"),
                done(),
            ]
        )
    )
    assert [p["type"] for p in got] == [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "tool-input-start",
        "tool-input-available",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "finish-step",
        "finish",
    ]


def test_a_continued_message_is_named_in_start_instead_of_the_response() -> None:
    assert parts([created(), done()])[0]["messageId"] == RID
    assert parts([created(), done()], message_id="msg-a1")[0]["messageId"] == "msg-a1"
