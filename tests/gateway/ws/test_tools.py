"""Tool calls and reasoning over a real WebSocket: own frames, Stop and resume inside a call."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from gateway.scaleout import codec
from sessions.events import ReasoningDelta, ToolArgumentsDelta, ToolCallAdded, ToolCallDone
from tests.fakes import Scenario
from tests.fakes.base import FakeToolCall
from tests.gateway.ws._support import Frame, fake_upstream, gateway

pytestmark = pytest.mark.anyio

MODEL = "openai/gpt-4o-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
ADDED = "response.output_item.added"
ARGS = "response.function_call_arguments.delta"
ARGS_DONE = "response.function_call_arguments.done"

# A long call, paced piece by piece, to stop or resume in the middle of its arguments.
LONG_PIECES = ['{"query": "', *(f"w{i} " for i in range(200)), '"}']
LONG_CALL = FakeToolCall("lookup", LONG_PIECES, id="call_long")


def assert_contiguous(frames: list[Frame], first_seq: int) -> None:
    """Every frame's seq, in order, one after the other: none merged, none lost or repeated."""
    assert [f["seq"] for f in frames] == list(range(first_seq, first_seq + len(frames)))


async def test_demo_tool_call_streams_as_tool_frames_and_finishes_with_tool_calls() -> None:
    async with gateway() as gw:
        client = await gw.open()
        rid = await client.create("weather in Paris", model="demo/tools", tools=TOOLS)
        created = await client.next("response.created", lambda f: f["request_id"] == rid)
        frames = await client.frames_of(created["response_id"])
        added, *pieces, args_done, done = frames
        assert added == {
            "type": ADDED,
            "response_id": created["response_id"],
            "seq": 1,
            "output_index": 0,
            "item": {
                "type": "function_call",
                "call_id": "call_demo_0",
                "name": "lookup",
                "arguments": "",
            },
        }
        assert pieces and all(p["type"] == ARGS for p in pieces)
        assert {(p["call_id"], p["output_index"]) for p in pieces} == {("call_demo_0", 0)}
        arguments = "".join(p["delta"] for p in pieces)
        assert orjson.loads(arguments) == {"query": "weather in Paris"}
        assert args_done == {
            "type": ARGS_DONE,
            "response_id": created["response_id"],
            "seq": args_done["seq"],
            "output_index": 0,
            "call_id": "call_demo_0",
            "name": "lookup",
            "arguments": arguments,
        }
        assert done["type"] == "response.done"
        assert done["status"] == "completed"
        assert done["finish_reason"] == "tool_calls"
        assert_contiguous(frames, 1)
        await client.aclose()


async def test_two_upstream_calls_keep_their_own_ids_indices_and_arguments() -> None:
    calls = [
        FakeToolCall("lookup", ['{"query"', ': "a"}'], id="call_a"),
        FakeToolCall("fetch", ['{"url": ', '"b"}'], id="call_b"),
    ]
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=["Let me look."], tool_calls=calls))
        client = await gw.open()
        rid = await client.create("hi", model=MODEL, tools=TOOLS)
        got = await client.response(rid)
        assert got.text == "Let me look."
        frames = [f for f in client.frames if f.get("response_id") == got.response_id]
        added = [f for f in frames if f["type"] == ADDED]
        assert [(f["output_index"], f["item"]["call_id"], f["item"]["name"]) for f in added] == [
            (0, "call_a", "lookup"),
            (1, "call_b", "fetch"),
        ]
        for index, call in enumerate(calls):
            pieces = [f for f in frames if f["type"] == ARGS and f["output_index"] == index]
            assert [p["delta"] for p in pieces] == call.arguments
            assert {p["call_id"] for p in pieces} == {call.id}
        dones = [f for f in frames if f["type"] == ARGS_DONE]
        assert [(f["call_id"], f["arguments"]) for f in dones] == [
            ("call_a", '{"query": "a"}'),
            ("call_b", '{"url": "b"}'),
        ]
        # Every call is done before the response is.
        assert frames[-1]["type"] == "response.done"
        assert frames[-1]["finish_reason"] == "tool_calls"
        assert max(f["seq"] for f in dones) < frames[-1]["seq"]
        await client.aclose()


async def test_cancel_in_the_middle_of_the_arguments_closes_the_upstream() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=[], tool_calls=[LONG_CALL], delay_s=0.01))
        client = await gw.open()
        await client.create("hi", model=MODEL, tools=TOOLS)
        created = await client.next("response.created")
        response_id = created["response_id"]
        await client.next(ADDED)
        for _ in range(3):
            await client.next(ARGS)
        await client.send("response.cancel", response_id=response_id)
        frames = await client.frames_of(response_id)
        done = frames[-1]
        assert done["status"] == "cancelled"
        assert done["reason"] == "client_cancelled"
        # A call cut short is never reported done.
        assert all(f["type"] != ARGS_DONE for f in client.frames)
        (record,) = upstream.requests
        with anyio.fail_after(3):
            await record.ended.wait()
        assert record.outcome == "disconnected"
        assert record.chunks_sent < len(LONG_PIECES)
        assert upstream.active_streams == 0
        await client.aclose()


async def test_resume_in_the_middle_of_a_tool_call_replays_every_piece_exactly_once() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=[], tool_calls=[LONG_CALL], delay_s=0.005))
        async with gateway(resume_window_ms=10_000, **overrides) as gw:
            client = await gw.open()
            await client.create("hi", request_id="req-tool-blip", model=MODEL, tools=TOOLS)
            created = await client.next("response.created")
            response_id = created["response_id"]
            before: list[Frame] = [await client.next(ADDED)]
            before += [await client.next(ARGS) for _ in range(3)]
            last_seq = before[-1]["seq"]
            await client.aclose()

            again = await gw.open()
            await again.send(
                "response.resume",
                response_id=response_id,
                epoch=created["epoch"],
                last_seq=last_seq,
            )
            result = await again.next("resume.result")
            assert result["recovered"] is True
            assert result["from_seq"] == last_seq + 1
            after = await again.frames_of(response_id, until_done=True)
            assert after[0]["seq"] == last_seq + 1
            assert_contiguous(before + after, 1)
            pieces = [f["delta"] for f in before + after if f["type"] == ARGS]
            assert pieces == LONG_PIECES
            (args_done,) = [f for f in after if f["type"] == ARGS_DONE]
            assert args_done["arguments"] == LONG_CALL.whole_arguments
            assert args_done["call_id"] == "call_long"
            assert after[-1]["finish_reason"] == "tool_calls"
            assert all(f["type"] != ADDED for f in after)
            await again.aclose()


@pytest.mark.parametrize(
    "event",
    [
        ReasoningDelta("resp_1", 1, "thinking"),
        ToolCallAdded("resp_1", 2, 0, "call_1", "lookup"),
        ToolArgumentsDelta("resp_1", 3, 0, '{"q": ', "call_1"),
        ToolCallDone("resp_1", 4, 0, "call_1", "lookup", '{"q": 1}'),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_redis_codec_stores_the_new_events_as_they_are(event: Any) -> None:
    assert codec.decode("resp_1", codec.encode(event)) == event


async def test_reasoning_streams_as_reasoning_frames_before_the_text() -> None:
    async with fake_upstream("ollama") as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=["It is", " 4."], thinking=["hmm", " 2+2"]))
        client = await gw.open()
        rid = await client.create("2+2?", model="ollama/llama3.2:latest")
        got = await client.response(rid)
        frames = [f for f in client.frames if f.get("response_id") == got.response_id]
        reasoning = [f for f in frames if f["type"] == "response.reasoning.delta"]
        assert [f["delta"] for f in reasoning] == ["hmm", " 2+2"]
        assert set(reasoning[0]) == {"type", "response_id", "seq", "delta"}
        assert max(f["seq"] for f in reasoning) < got.deltas[0]["seq"]
        assert got.text == "It is 4."
        assert got.done["status"] == "completed"
        await client.aclose()
