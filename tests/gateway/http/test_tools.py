"""The whole chat contract through the official ``openai`` SDK, for each provider (fakes).

Tool calls (streamed and whole, two in parallel), the follow-up turn with tool
results, structured output with ``chat.completions.parse``, image parts and the
parameters a provider cannot honour. Each test also asserts what reached the
provider (the fakes record the request body), not only what came back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.anthropic import create_app as anthropic_app
from tests.fakes.base import FakeToolCall
from tests.fakes.ollama import create_app as ollama_app
from tests.fakes.openai import create_app as openai_app
from tests.gateway.http._support import Gateway, gateway

pytestmark = pytest.mark.anyio

KEY = "sk-upstream-tools-0123456789"
PROVIDERS = ["openai", "anthropic", "ollama"]
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "ollama": "ollama/llama3.2:latest",
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]
TWO_CALLS = [
    FakeToolCall("get_weather", ['{"city"', ': "Par', 'is"}'], id="call_w"),
    FakeToolCall("get_time", ['{"tz": ', '"CET"}'], id="call_t"),
]
PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class Setup:
    gw: Gateway
    upstream: FakeUpstream
    provider: str

    @property
    def model(self) -> str:
        return MODELS[self.provider]

    @property
    def client(self) -> openai.AsyncOpenAI:
        return self.gw.openai()


@contextlib.asynccontextmanager
async def setup(provider: str) -> AsyncIterator[Setup]:
    upstream = FakeUpstream(api_key=KEY if provider != "ollama" else None)
    apps = {"openai": openai_app, "anthropic": anthropic_app, "ollama": ollama_app}
    async with serve(apps[provider](upstream)) as base:
        config: dict[str, Any] = {
            "openai": {"openai_base_url": f"{base}/v1", "openai_api_key": KEY},
            "anthropic": {"anthropic_base_url": base, "anthropic_api_key": KEY},
            "ollama": {"ollama_base_url": base},
        }[provider]
        async with gateway(retry={"max_attempts": 1}, **config) as gw:
            yield Setup(gw, upstream, provider)


def _without_system(messages: list[Any]) -> list[Any]:
    """The turns the client sent (the default agent puts its instructions first)."""
    return [m for m in messages if m["role"] != "system"]


def weather_question() -> list[Any]:
    return [{"role": "user", "content": "Weather and time in Paris?"}]


# --- tool calls -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streamed_tool_call_with_two_parallel_calls(provider: str) -> None:
    async with setup(provider) as s:
        s.upstream.queue(Scenario(tokens=[], tool_calls=TWO_CALLS))
        stream = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), tools=TOOLS, stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for piece in chunk.choices[0].delta.tool_calls or ():
            assert piece.function is not None
            if piece.index not in calls:
                # The first piece of each call names it; later pieces carry the index only.
                assert piece.id and piece.function.name and piece.type == "function"
                calls[piece.index] = {"id": piece.id, "name": piece.function.name, "args": ""}
            else:
                assert piece.id is None and piece.function.name is None
            calls[piece.index]["args"] += piece.function.arguments or ""
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert calls[0]["args"] == '{"city": "Paris"}' or (
        provider == "ollama" and calls[0]["args"] == '{"city":"Paris"}'
    )
    assert calls[1]["args"].replace(" ", "") == '{"tz":"CET"}'
    assert calls[0]["id"] != calls[1]["id"]
    if provider != "ollama":  # Ollama has no call ids: the gateway makes them
        assert (calls[0]["id"], calls[1]["id"]) == ("call_w", "call_t")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    _assert_tools_reached(s.upstream.last.body, provider)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_whole_tool_call_with_two_parallel_calls(provider: str) -> None:
    async with setup(provider) as s:
        s.upstream.queue(Scenario(tokens=[], tool_calls=TWO_CALLS))
        completion = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), tools=TOOLS, tool_choice="auto"
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert [c.function.arguments.replace(" ", "") for c in calls] == [  # type: ignore[union-attr]
        '{"city":"Paris"}',
        '{"tz":"CET"}',
    ]
    _assert_tools_reached(s.upstream.last.body, provider)


def _assert_tools_reached(body: dict[str, Any], provider: str) -> None:
    if provider == "anthropic":
        assert body["tools"] == [
            {
                "name": "get_weather",
                "description": "The weather in a city.",
                "input_schema": TOOLS[0]["function"]["parameters"],
            },
            {"name": "get_time", "input_schema": TOOLS[1]["function"]["parameters"]},
        ]
    elif provider == "openai":
        assert body["tools"] == TOOLS
    else:
        assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
        assert body["tools"][0]["function"]["parameters"] == TOOLS[0]["function"]["parameters"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_follow_up_turn_with_tool_results(provider: str) -> None:
    messages: list[Any] = [
        *weather_question(),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_t",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_w", "content": "21 C, sunny"},
        {"role": "tool", "tool_call_id": "call_t", "content": "14:05"},
    ]
    async with setup(provider) as s:
        s.upstream.queue(Scenario(tokens=["Sunny", ", 21 C at 14:05."]))
        completion = await s.client.chat.completions.create(
            model=s.model, messages=messages, tools=TOOLS
        )
        sent = _without_system(s.upstream.last.body["messages"])
    assert completion.choices[0].message.content == "Sunny, 21 C at 14:05."
    if provider == "openai":
        assert sent == messages
    elif provider == "anthropic":
        assert sent == [
            {"role": "user", "content": "Weather and time in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_w",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "call_t",
                        "name": "get_time",
                        "input": {"tz": "CET"},
                    },
                ],
            },
            {  # both results in ONE user turn, as the API requires
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_w", "content": "21 C, sunny"},
                    {"type": "tool_result", "tool_use_id": "call_t", "content": "14:05"},
                ],
            },
        ]
    else:
        assert sent[1] == {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {"tz": "CET"}}},
            ],
        }
        assert sent[2:] == [
            {"role": "tool", "content": "21 C, sunny", "tool_name": "get_weather"},
            {"role": "tool", "content": "14:05", "tool_name": "get_time"},
        ]


# --- structured output --------------------------------------------------------------------


class Weather(BaseModel):
    city: str
    temp_c: int


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_parse_returns_the_parsed_object(provider: str) -> None:
    async with setup(provider) as s:
        s.upstream.queue(Scenario(tokens=['{"city": "Paris", ', '"temp_c": 21}']))
        completion = await s.client.chat.completions.parse(
            model=s.model, messages=weather_question(), response_format=Weather
        )
        body = s.upstream.last.body
    assert completion.choices[0].message.parsed == Weather(city="Paris", temp_c=21)
    schema = Weather.model_json_schema()
    if provider == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Weather"
    elif provider == "anthropic":
        sent = body["output_config"]["format"]
        assert sent["type"] == "json_schema"
        assert sent["schema"]["properties"] == schema["properties"]
    else:
        assert body["format"]["properties"] == schema["properties"]


REFUSAL = ["I'm sorry, ", "I can't help with that."]


async def test_a_refusal_reaches_parse_as_the_sdk_reads_it() -> None:
    # Structured outputs: OpenAI answers a request it will not fulfil with a refusal
    # instead of the JSON; the SDK's parse() gives it back with parsed=None.
    async with setup("openai") as s:
        s.upstream.queue(Scenario(tokens=[], refusal=REFUSAL))
        completion = await s.client.chat.completions.parse(
            model=s.model, messages=weather_question(), response_format=Weather
        )
    message = completion.choices[0].message
    assert (message.content, message.parsed) == (None, None)
    assert message.refusal == "".join(REFUSAL)


async def test_a_streamed_refusal_arrives_as_refusal_deltas() -> None:
    async with setup("openai") as s:
        s.upstream.queue(Scenario(tokens=[], refusal=REFUSAL))
        stream = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), stream=True
        )
        chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert [d.refusal for d in deltas if d.refusal] == REFUSAL
    assert not "".join(d.content or "" for d in deltas)
    assert chunks[-1].choices[0].finish_reason == "stop"
    async with setup("openai") as s:  # the SDK's own stream helper gathers it too
        s.upstream.queue(Scenario(tokens=[], refusal=REFUSAL))
        async with s.client.chat.completions.stream(
            model=s.model, messages=weather_question(), response_format=Weather
        ) as helper:
            final = await helper.get_final_completion()
    assert final.choices[0].message.refusal == "".join(REFUSAL)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_json_object_reaches_the_provider(provider: str) -> None:
    async with setup(provider) as s:
        if provider == "anthropic":  # the forced answer tool, unwrapped into text
            s.upstream.queue(
                Scenario(tokens=[], tool_calls=[FakeToolCall("json_answer", ['{"a": ', "1}"])])
            )
        else:
            s.upstream.queue(Scenario(tokens=['{"a": 1}']))
        completion = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), response_format={"type": "json_object"}
        )
        body = s.upstream.last.body
    choice = completion.choices[0]
    assert (choice.message.content or "").replace(" ", "") == '{"a":1}'
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    if provider == "openai":
        assert body["response_format"] == {"type": "json_object"}
    elif provider == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "json_answer"}
    else:
        assert body["format"] == "json"


# --- images ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_image_part_is_encoded_for_the_provider(provider: str) -> None:
    messages: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": PIXEL}},
            ],
        }
    ]
    async with setup(provider) as s:
        await s.client.chat.completions.create(model=s.model, messages=messages)
        sent = _without_system(s.upstream.last.body["messages"])[0]
    data = PIXEL.partition(",")[2]
    if provider == "openai":
        assert sent == messages[0]
    elif provider == "anthropic":
        assert sent["content"] == [
            {"type": "text", "text": "What is this?"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": data},
            },
        ]
    else:
        assert sent == {"role": "user", "content": "What is this?", "images": [data]}


async def test_an_https_image_is_a_url_source_on_anthropic() -> None:
    async with setup("anthropic") as s:
        await s.client.chat.completions.create(
            model=s.model,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                    ],
                }
            ],
        )
        sent = s.upstream.last.body["messages"][0]
    assert sent["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    ]


# --- nothing silently dropped ------------------------------------------------------------

UNSUPPORTED = [
    ("anthropic", {"n": 2}, "n"),
    ("anthropic", {"logprobs": True}, "logprobs"),
    ("anthropic", {"seed": 1}, "seed"),
    ("anthropic", {"presence_penalty": 0.5}, "presence_penalty"),
    ("anthropic", {"frequency_penalty": 0.5}, "frequency_penalty"),
    ("anthropic", {"reasoning_effort": "minimal"}, "reasoning_effort"),
    ("ollama", {"n": 2}, "n"),
    ("ollama", {"logprobs": True, "top_logprobs": 2}, "logprobs"),
    ("ollama", {"user": "u-1"}, "user"),
    ("ollama", {"tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
    ("ollama", {"tools": TOOLS, "parallel_tool_calls": False}, "parallel_tool_calls"),
    ("ollama", {"messages": "https-image"}, "messages"),
    ("openai", {"web_search_options": {}}, "web_search_options"),
    ("openai", {"modalities": ["text", "audio"]}, "modalities"),
    ("anthropic", {"logit_bias": {"50256": -100}}, "logit_bias"),
]


@pytest.mark.parametrize(("provider", "extra", "param"), UNSUPPORTED)
async def test_an_unsupported_parameter_is_refused_by_name(
    provider: str, extra: dict[str, Any], param: str
) -> None:
    kwargs: dict[str, Any] = {"messages": weather_question(), **extra}
    if extra.get("messages") == "https-image":
        image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
        kwargs["messages"] = [{"role": "user", "content": [image]}]
    async with setup(provider) as s:
        with pytest.raises(openai.BadRequestError) as caught:
            await s.client.chat.completions.create(model=s.model, **kwargs)
        assert s.upstream.requests == []  # refused before anything was sent
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


async def test_n_choices_on_openai() -> None:
    async with setup("openai") as s:
        completion = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), n=2, seed=7, logprobs=True
        )
        body = s.upstream.last.body
    assert [c.index for c in completion.choices] == [0, 1]
    assert (body["n"], body["seed"], body["logprobs"]) == (2, 7, True)


# --- the offline demo model ------------------------------------------------------------


async def test_demo_tools_calls_then_answers_from_the_result() -> None:
    async with gateway() as gw:
        client = gw.openai()
        stream = await client.chat.completions.create(
            model="demo/tools", messages=weather_question(), tools=TOOLS, stream=True
        )
        pieces = [c.choices[0].delta.tool_calls async for c in stream if c.choices]
        flat = [p for group in pieces if group for p in group]
        assert flat[0].id == "call_demo_0" and flat[0].function.name == "get_weather"  # type: ignore[union-attr]
        arguments = "".join(p.function.arguments or "" for p in flat)  # type: ignore[union-attr]
        assert arguments == '{"city":"Weather and time in Paris?"}'
        assert len(flat) > 2  # streamed in several pieces
        follow_up: list[Any] = [
            *weather_question(),
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_demo_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_demo_0", "content": "21 C"},
        ]
        answer = await client.chat.completions.create(
            model="demo/tools", messages=follow_up, tools=TOOLS
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="demo/echo", messages=weather_question(), tools=TOOLS
            )
    assert answer.choices[0].message.content == "get_weather returned: 21 C"
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "tools")
