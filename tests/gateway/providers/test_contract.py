"""The provider contract's own helpers: content views, set options, completions."""

from __future__ import annotations

import orjson

from gateway.http._chunks import ChunkWriter
from gateway.providers.base import (
    ChatMessage,
    ChatOptions,
    Completion,
    ImagePart,
    NamedTool,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)


def test_text_of_parts_leaves_images_out() -> None:
    message = ChatMessage("user", (TextPart("a "), ImagePart("https://x/y.png"), TextPart("b")))
    assert message.text == "a b"
    assert ChatMessage("user", "plain").parts == (TextPart("plain"),)


def test_inline_image_splits_a_data_url() -> None:
    assert ImagePart("data:image/png;base64,iVBOR").inline == ("image/png", "iVBOR")
    assert ImagePart("https://example.com/cat.png").inline is None
    assert ImagePart("data:image/png,notbase64").inline is None


def test_given_names_only_what_was_asked_for() -> None:
    assert ChatOptions().given() == []
    assert ChatOptions(n=1, logprobs=False).given() == []
    options = ChatOptions(
        tools=(Tool("f"),),
        tool_choice=NamedTool("f"),
        response_format=ResponseFormat("json_object"),
        n=2,
        seed=0,
    )
    assert options.given() == ["tools", "tool_choice", "response_format", "seed", "n"]


def test_completion_choices_put_the_first_choice_first() -> None:
    call = ToolCall("call_1", "f", "{}")
    completion = Completion("", "tool_calls", None, "m", tool_calls=(call,))
    (first,) = completion.choices
    assert (first.text, first.tool_calls, first.finish_reason) == (None, (call,), "tool_calls")


def test_tool_call_chunks_have_openai_shape() -> None:
    writer = ChunkWriter("chatcmpl-1", 1, "m", include_usage=False)
    start = orjson.loads(writer.tool_call_start(1, "call_9", "lookup").removeprefix(b"data: "))
    piece = orjson.loads(writer.tool_call_arguments(1, '{"q"').removeprefix(b"data: "))
    assert start["choices"][0]["delta"] == {
        "tool_calls": [
            {
                "index": 1,
                "id": "call_9",
                "type": "function",
                "function": {"name": "lookup", "arguments": ""},
            }
        ]
    }
    assert piece["choices"][0]["delta"] == {
        "tool_calls": [{"index": 1, "function": {"arguments": '{"q"'}}]
    }
