"""Tool calls and reasoning in the UI Message Stream, over real sockets (uvicorn + httpx).

Tools arrive through useChat's ``body`` (OpenAI function format); the calls come
from the demo provider's ``demo/tools`` or a fake upstream's wire format; the
follow-up turn (tool parts with their outputs) is checked at the fake upstream,
as the provider receives it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tests.fakes import FakeUpstream, Scenario
from tests.fakes.base import FakeToolCall
from tests.fakes.server import serve
from tests.gateway.ui._support import DONE, Part, body, fake_upstream, gateway, open_stream

pytestmark = pytest.mark.anyio

URL = "/api/v1/ui/chat"
OPENAI = "openai/gpt-4o-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Looks a query up.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "fetch",
            "parameters": {"type": "object", "properties": {"url": {"type": "string"}}},
        },
    },
]


@contextlib.asynccontextmanager
async def anthropic_upstream() -> AsyncIterator[tuple[FakeUpstream, dict[str, Any]]]:
    from tests.fakes.anthropic import create_app

    upstream = FakeUpstream()
    async with serve(create_app(upstream)) as base:
        yield upstream, {"anthropic_base_url": base, "anthropic_api_key": "sk-ant-test"}


def of_type(seen: list[Part | str], kind: str) -> list[Part]:
    return [p for p in seen if isinstance(p, dict) and p["type"] == kind]


async def test_a_demo_tool_call_streams_as_tool_input_parts_and_finishes_with_tool_calls() -> None:
    async with gateway() as gw, gw.http() as http:
        payload = body("weather in Paris", model="demo/tools", tools=TOOLS)
        async with open_stream(http, "POST", URL, json=payload) as parts:
            seen = await parts.rest()
        types = parts.types
        assert types[:3] == ["start", "start-step", "tool-input-start"]
        assert types[-4:] == ["tool-input-available", "finish-step", "finish", DONE]
        assert "text-start" not in types
        (start,) = of_type(seen, "tool-input-start")
        assert start == {
            "type": "tool-input-start",
            "toolCallId": "call_demo_0",
            "toolName": "lookup",
        }
        pieces = of_type(seen, "tool-input-delta")
        assert len(pieces) > 1  # streamed in pieces, not whole
        assert {p["toolCallId"] for p in pieces} == {"call_demo_0"}
        (available,) = of_type(seen, "tool-input-available")
        assert available == {
            "type": "tool-input-available",
            "toolCallId": "call_demo_0",
            "toolName": "lookup",
            "input": {"query": "weather in Paris"},
        }
        assert "".join(p["inputTextDelta"] for p in pieces) == '{"query":"weather in Paris"}'
        (finish,) = of_type(seen, "finish")
        assert finish["finishReason"] == "tool-calls"
        assert finish["messageMetadata"]["finishReason"] == "tool_calls"
        assert finish["messageMetadata"]["usage"]["outputTokens"] > 0


async def test_the_follow_up_turn_continues_the_assistant_message_with_the_answer() -> None:
    """What useChat sends itself once every call has its output
    (``sendAutomaticallyWhen``): the chat ends with the assistant message."""
    assistant = {
        "id": "resp_earlier",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {
                "type": "tool-lookup",
                "toolCallId": "call_demo_0",
                "state": "output-available",
                "input": {"query": "weather in Paris"},
                "output": {"forecast": "sunny"},
            },
        ],
    }
    payload = body("weather in Paris", model="demo/tools", tools=TOOLS)
    payload["messages"].append(assistant)
    async with (
        gateway() as gw,
        gw.http() as http,
        open_stream(http, "POST", URL, json=payload) as parts,
    ):
        seen = await parts.rest()
    (start,) = of_type(seen, "start")
    assert start["messageId"] == "resp_earlier"
    assert parts.text == 'lookup returned: {"forecast":"sunny"}'
    assert of_type(seen, "finish")[0]["finishReason"] == "stop"
    assert "tool-input-start" not in parts.types


async def test_a_resumed_follow_up_names_its_response_not_the_continued_message() -> None:
    """useChat rebuilds a resumed message from the replay alone (only the new step):
    named as the continued message it would replace that message's tool parts, so
    the replay announces the response's own id and becomes a message of its own."""
    payload = body("weather in Paris", model="demo/tools", tools=TOOLS)
    payload["messages"].append(
        {
            "id": "a1",
            "role": "assistant",
            "parts": [
                {
                    "type": "tool-lookup",
                    "toolCallId": "call_demo_0",
                    "state": "output-available",
                    "input": {"query": "weather in Paris"},
                    "output": "sunny and warm all afternoon",
                }
            ],
        }
    )
    async with gateway(demo_token_delay_ms=20) as gw, gw.http() as http:
        async with open_stream(http, "POST", URL, json=payload) as first:
            assert (await first.until("start"))["messageId"] == "a1"
            await first.until("text-delta")
        async with open_stream(http, "GET", f"{URL}/chat-1/stream") as resumed:
            start = await resumed.until("start")
            await resumed.rest()
    assert start["messageId"].startswith("resp_")
    assert resumed.text == "lookup returned: sunny and warm all afternoon"


async def test_two_parallel_upstream_calls_and_their_follow_up_reach_the_provider() -> None:
    calls = [
        FakeToolCall("lookup", ['{"query"', ': "a"}'], id="call_a"),
        FakeToolCall("fetch", ['{"url": ', '"b"}'], id="call_b"),
    ]
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=["Let me look."], tool_calls=calls))
        async with gw.http() as http:
            payload = body("hi", model=OPENAI, tools=TOOLS, tool_choice="auto")
            async with open_stream(http, "POST", URL, json=payload) as parts:
                seen = await parts.rest()
            sent = upstream.requests[0].body
            assert [t["function"]["name"] for t in sent["tools"]] == ["lookup", "fetch"]
            assert sent["tools"][0]["function"]["description"] == "Looks a query up."
            assert sent["tool_choice"] == "auto"
            types = parts.types
            assert types.index("text-end") < types.index("tool-input-start")
            starts = of_type(seen, "tool-input-start")
            assert [(s["toolCallId"], s["toolName"]) for s in starts] == [
                ("call_a", "lookup"),
                ("call_b", "fetch"),
            ]
            for call in calls:
                pieces = [
                    p for p in of_type(seen, "tool-input-delta") if p["toolCallId"] == call.id
                ]
                assert [p["inputTextDelta"] for p in pieces] == call.arguments
            available = of_type(seen, "tool-input-available")
            assert [(a["toolCallId"], a["input"]) for a in available] == [
                ("call_a", {"query": "a"}),
                ("call_b", {"url": "b"}),
            ]
            assert of_type(seen, "finish")[0]["finishReason"] == "tool-calls"
            message_id = of_type(seen, "start")[0]["messageId"]

            # The follow-up: the same message with both outputs, then a new user turn.
            follow = body("hi", model=OPENAI, tools=TOOLS)
            follow["messages"] += [
                {
                    "id": message_id,
                    "role": "assistant",
                    "parts": [
                        {"type": "step-start"},
                        {"type": "text", "text": "Let me look."},
                        {
                            "type": "tool-lookup",
                            "toolCallId": "call_a",
                            "state": "output-available",
                            "input": {"query": "a"},
                            "output": "found a",
                        },
                        {
                            "type": "dynamic-tool",
                            "toolName": "fetch",
                            "toolCallId": "call_b",
                            "state": "output-available",
                            "input": {"url": "b"},
                            "output": {"status": 200},
                        },
                    ],
                },
                {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "and?"}]},
            ]
            upstream.queue(Scenario(tokens=["Both done."]))
            async with open_stream(http, "POST", URL, json=follow) as again:
                await again.rest()
        assert again.text == "Both done."
        messages = upstream.requests[1].body["messages"]
        assert [m["role"] for m in messages][-5:] == ["user", "assistant", "tool", "tool", "user"]
        assistant_turn, result_a, result_b = messages[-4:-1]
        assert assistant_turn["content"] == "Let me look."
        assert [
            (c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in assistant_turn["tool_calls"]
        ] == [("call_a", "lookup", '{"query":"a"}'), ("call_b", "fetch", '{"url":"b"}')]
        assert (result_a["tool_call_id"], result_a["content"]) == ("call_a", "found a")
        assert (result_b["tool_call_id"], result_b["content"]) == ("call_b", '{"status":200}')


async def test_reasoning_from_anthropic_thinking_is_a_reasoning_block_before_the_text() -> None:
    async with anthropic_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=["It is", " 4."], thinking=["hmm,", " 2+2"]))
        async with gw.http() as http:
            payload = body("2+2?", model="anthropic/claude-sonnet-4-5")
            async with open_stream(http, "POST", URL, json=payload) as parts:
                seen = await parts.rest()
        types = parts.types
        assert types[:3] == ["start", "start-step", "reasoning-start"]
        reasoning = of_type(seen, "reasoning-delta")
        assert "".join(p["delta"] for p in reasoning) == "hmm, 2+2"
        (r_start,) = of_type(seen, "reasoning-start")
        (r_end,) = of_type(seen, "reasoning-end")
        assert {p["id"] for p in reasoning} == {r_start["id"]} == {r_end["id"]}
        # The reasoning block is closed before the text block opens.
        assert types.index("reasoning-end") < types.index("text-start")
        assert parts.text == "It is 4."
        assert types[-4:] == ["text-end", "finish-step", "finish", DONE]


async def test_arguments_that_are_not_json_end_the_call_with_a_tool_input_error() -> None:
    broken = FakeToolCall("lookup", ['{"query": ', '"a'], id="call_bad")
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=[], tool_calls=[broken]))
        async with gw.http() as http:
            payload = body("hi", model=OPENAI, tools=TOOLS)
            async with open_stream(http, "POST", URL, json=payload) as parts:
                seen = await parts.rest()
        assert "tool-input-available" not in parts.types
        (error,) = of_type(seen, "tool-input-error")
        assert error["toolCallId"] == "call_bad"
        assert error["toolName"] == "lookup"
        assert error["input"] == '{"query": "a'
        assert error["errorText"]
        assert parts.types[-3:] == ["finish-step", "finish", DONE]


async def test_stop_in_the_middle_of_a_call_ends_it_as_an_error_and_closes_the_upstream() -> None:
    long_call = FakeToolCall("lookup", ['{"query": "', *(f"w{i} " for i in range(300)), '"}'])
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=[], tool_calls=[long_call], delay_s=0.01))
        async with gw.http() as http:
            payload = body("hi", model=OPENAI, tools=TOOLS)
            async with open_stream(http, "POST", URL, json=payload) as parts:
                for _ in range(3):
                    await parts.until("tool-input-delta")
                assert (await http.post(f"{URL}/chat-1/stop")).json()["stopped"] is True
                seen = await parts.rest()
            (record,) = upstream.requests
            with anyio.fail_after(5):
                await record.ended.wait()
            assert record.outcome == "disconnected"
        assert parts.types[-3:] == ["tool-input-error", "abort", DONE]
        (error,) = of_type(seen, "tool-input-error")
        streamed = "".join(p["inputTextDelta"] for p in of_type(seen, "tool-input-delta"))
        assert error["input"] == streamed
        assert len(streamed) < len(long_call.whole_arguments)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0]"),
        ({"tools": [{"type": "nope"}]}, "tools[0]"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
async def test_bad_tool_definitions_are_a_422_naming_them_before_any_stream(
    extra: dict[str, Any], param: str
) -> None:
    async with gateway() as gw, gw.http() as http:
        response = await http.post(URL, json=body("hi", model="demo/tools", **extra))
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["param"].startswith(param)
        assert gw.services.sessions is not None
        assert gw.services.sessions.sessions == 0


async def test_a_model_that_takes_no_tools_refuses_them_before_the_stream() -> None:
    """The primary target's refusal is the answer (the router skips only fallbacks that
    would refuse), so it is known before anything starts: a 400 naming the field, as
    for any other body the chosen model cannot take, and no stream at all."""
    async with gateway() as gw, gw.http() as http:
        response = await http.post(URL, json=body("hi", model="demo/echo", tools=TOOLS))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_parameter", "tools")
    assert not response.headers.get("x-vercel-ai-ui-message-stream")
