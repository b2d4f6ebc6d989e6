"""The useChat request body -> the gateway's chat turns (no sockets: the edge model alone)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import UnsupportedParameter, ValidationFailed
from gateway.providers.base import ChatMessage, ImagePart, TextPart, ToolCall
from gateway.ui.request import parse_ui_body

PNG = "data:image/png;base64,iVBORw0KGgo="


def parse(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    raw = orjson.dumps({"id": "c", "messages": messages, "trigger": "submit-message"})
    return parse_ui_body(raw).chat_messages()


def test_text_parts_join_and_ui_only_parts_are_dropped() -> None:
    turns = parse(
        [
            {"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]},
            {
                "id": "2",
                "role": "assistant",
                "parts": [
                    {"type": "step-start"},
                    {"type": "reasoning", "text": "think"},
                    {"type": "source-url", "sourceId": "s", "url": "https://x"},
                    {"type": "data-weather", "data": {"t": 1}},
                    {"type": "text", "text": "Hel"},
                    {"type": "text", "text": "lo"},
                ],
            },
        ]
    )
    assert turns == [ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello")]


def test_an_image_file_part_of_a_user_message_is_an_image_part() -> None:
    (turn,) = parse(
        [
            {
                "id": "1",
                "role": "user",
                "parts": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "file", "mediaType": "image/png", "url": PNG},
                ],
            }
        ]
    )
    assert turn == ChatMessage("user", (TextPart("What is this?"), ImagePart(PNG)))


def test_tool_parts_become_calls_then_results_one_turn_per_step() -> None:
    turns = parse(
        [
            {"id": "1", "role": "user", "parts": [{"type": "text", "text": "Weather?"}]},
            {
                "id": "2",
                "role": "assistant",
                "parts": [
                    {"type": "step-start"},
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool-weather",
                        "toolCallId": "call_1",
                        "state": "output-available",
                        "input": {"city": "Oslo"},
                        "output": {"temp": 3},
                    },
                    {
                        "type": "dynamic-tool",
                        "toolName": "clock",
                        "toolCallId": "call_2",
                        "state": "output-error",
                        "input": {},
                        "errorText": "no clock",
                    },
                    {"type": "step-start"},
                    {"type": "text", "text": "3 degrees."},
                ],
            },
        ]
    )
    assert turns == [
        ChatMessage("user", "Weather?"),
        ChatMessage(
            "assistant",
            "Let me look.",
            tool_calls=(
                ToolCall("call_1", "weather", '{"city":"Oslo"}'),
                ToolCall("call_2", "clock", "{}"),
            ),
        ),
        ChatMessage("tool", '{"temp":3}', tool_call_id="call_1", name="weather"),
        ChatMessage("tool", "error: no clock", tool_call_id="call_2", name="clock"),
        ChatMessage("assistant", "3 degrees."),
    ]


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (
            {
                "role": "user",
                "parts": [{"type": "file", "mediaType": "application/pdf", "url": "x"}],
            },
            "only images",
        ),
        (
            {
                "role": "assistant",
                "parts": [{"type": "file", "mediaType": "image/png", "url": PNG}],
            },
            "only images",
        ),
        (
            {
                "role": "assistant",
                "parts": [{"type": "tool-x", "toolCallId": "c1", "state": "input-available"}],
            },
            "has no result yet",
        ),
        (
            {
                "role": "user",
                "parts": [{"type": "tool-x", "toolCallId": "c1", "state": "output-available"}],
            },
            "outside an assistant message",
        ),
        ({"role": "user", "parts": [{"type": "mystery"}]}, "'mystery' is not supported"),
        ({"role": "user", "parts": [{"type": "text"}]}, "needs a string 'text'"),
    ],
)
def test_parts_that_cannot_be_passed_on_are_a_422_naming_the_message(
    message: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse([{"id": "m", **message}])
    assert caught.value.param == "messages[0]"
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"seed": 7}, "seed"), ({"safety_identifier": "u-1"}, "safety_identifier"), ({"n": 2}, "n")],
)
def test_a_field_the_body_does_not_take_is_refused_by_name(
    extra: dict[str, Any], param: str
) -> None:
    """Never ignored (#11): useChat's own fields pass, anything else is named."""
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    body = {"id": "c", "messages": [message], "trigger": "submit-message", "messageId": "m1"}
    with pytest.raises(UnsupportedParameter) as caught:
        parse_ui_body(orjson.dumps({**body, **extra}))
    assert caught.value.param == param
    assert parse_ui_body(orjson.dumps(body)).chat_messages()[0].content == "hi"
