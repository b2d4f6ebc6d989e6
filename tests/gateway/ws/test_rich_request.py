"""A full chat-completions turn over the socket reaches each provider in its own shape (#11).

One ``response.create`` with an image part, an assistant turn with a tool call, the
tool's result, a named ``tool_choice`` and a ``json_schema`` output format, against
each fake upstream; the assertions are on the body the fake recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import Scenario
from tests.gateway.http.test_tools import PIXEL
from tests.gateway.ws._support import fake_upstream, gateway

pytestmark = pytest.mark.anyio

PNG_B64 = PIXEL.removeprefix("data:image/png;base64,")
QUESTION = "Where is this, and the weather there?"
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "summary": {"type": "string"}},
    "required": ["city", "summary"],
    "additionalProperties": False,
}
MESSAGES: list[Any] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image_url", "image_url": {"url": PIXEL}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_w",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_w", "content": "21 C, sunny"},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": PARAMETERS}}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True},
}
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "ollama": "ollama/llama3.2:latest",
}

EXPECTED: dict[str, dict[str, Any]] = {
    "openai": {
        "messages": MESSAGES,  # as the client sent them
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": PARAMETERS}}
        ],
        "tool_choice": NAMED,
        "response_format": FORMAT,
    },
    "anthropic": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": QUESTION},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_w",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_w", "content": "21 C, sunny"}
                ],
            },
        ],
        "tools": [{"name": "get_weather", "input_schema": PARAMETERS}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    },
    "ollama": {
        "messages": [
            {"role": "user", "content": QUESTION, "images": [PNG_B64]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            },
            {"role": "tool", "content": "21 C, sunny", "tool_name": "get_weather"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "", "parameters": PARAMETERS},
            }
        ],
        "format": SCHEMA,
    },
}


def _request(provider: str, tool_choice: Any) -> dict[str, Any]:
    return {
        "request_id": f"rich-{provider}",
        "model": MODELS[provider],
        "messages": MESSAGES,
        "tools": TOOLS,
        "tool_choice": tool_choice,
        "response_format": FORMAT,
    }


@pytest.mark.parametrize("provider", sorted(EXPECTED))
async def test_a_rich_turn_reaches_the_provider_in_its_own_shape(provider: str) -> None:
    # Ollama has no tool_choice but "auto" (a named one is refused: the next test).
    choice = "auto" if provider == "ollama" else NAMED
    async with fake_upstream(provider) as (upstream, overrides), gateway(**overrides) as gw:
        client = await gw.open()
        await client.send("response.create", **_request(provider, choice))
        created = await client.next("response.created")
        done = (await client.frames_of(created["response_id"]))[-1]
        body = upstream.last.body
        await client.aclose()
    assert (done["type"], done["status"]) == ("response.done", "completed")
    sent = {**body, "messages": [m for m in body["messages"] if m["role"] != "system"]}
    for field, value in EXPECTED[provider].items():
        assert sent[field] == value, field
    if provider == "ollama":
        assert "tool_choice" not in body


async def test_a_named_tool_choice_ollama_cannot_honour_is_refused_by_name() -> None:
    # A refusal, not a failed response blamed on the provider: no response.created,
    # an error frame with the request id, nothing sent upstream, the socket goes on.
    async with fake_upstream("ollama") as (upstream, overrides), gateway(**overrides) as gw:
        client = await gw.open()
        await client.send("response.create", **_request("ollama", NAMED))
        refused = await client.next("error")
        await client.send("ping", ts=1)
        await client.next("pong")
        await client.aclose()
    assert refused["error"]["request_id"] == "rich-ollama"
    assert (refused["error"]["code"], refused["error"]["param"]) == (
        "unsupported_parameter",
        "tool_choice",
    )
    assert not [f for f in client.frames if f["type"] == "response.created"]
    assert upstream.requests == []


async def test_a_refusal_arrives_on_the_socket_as_the_answer_text() -> None:
    # The socket has no refusal frame (nor has OpenAI's Realtime API): the text the
    # model sent instead of an answer is not lost, it is the answer's text.
    refusal = ["I'm sorry, ", "I can't help with that."]
    async with fake_upstream("openai") as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=[], refusal=refusal))
        client = await gw.open()
        got = await client.response(await client.create("hi", model=MODELS["openai"]))
        await client.aclose()
    assert got.text == "".join(refusal)
    assert (got.done["status"], got.done["finish_reason"]) == ("completed", "stop")
