"""Streaming over the socket: frames, seq, text, usage, defaults, concurrency, ping."""

from __future__ import annotations

import anyio
import pytest

from tests.gateway.ws._support import Collected, gateway, user

pytestmark = pytest.mark.anyio


def assert_well_formed(got: Collected) -> None:
    """Seq rises strictly within a response and the done comes last with the next seq."""
    seqs = [d["seq"] for d in got.deltas]
    assert seqs == sorted(set(seqs))
    assert all(s >= 1 for s in seqs)
    assert got.done["seq"] == (seqs[-1] if seqs else 0) + 1


async def test_session_created_then_streamed_echo() -> None:
    # Paced tokens: each delta has its own frame (at full speed they may merge).
    async with gateway(demo_token_delay_ms=2) as gw:
        client = await gw.open()
        created = client.frames[0]
        assert created["type"] == "session.created"
        assert created["protocol"] == "chat-gateway.v1"
        assert created["session_id"].startswith("sess_")
        assert created["resume_window_ms"] == gw.services.settings.resume_window_ms
        assert created["limits"]["max_concurrent_responses"] == 4
        rid = await client.create("one two three four")
        got = await client.response(rid)
        assert got.created["seq"] == 0
        assert got.created["provider"] == "demo"
        assert got.created["model"] == "echo"
        assert got.created["epoch"] == gw.manager.epoch
        assert got.text == "one two three four"
        assert [d["seq"] for d in got.deltas] == [1, 2, 3, 4]
        assert got.done["seq"] == 5
        assert got.done["status"] == "completed"
        assert got.done["request_id"] == rid
        assert got.done["finish_reason"] == "stop"
        # Input counts the default agent's instructions too (the demo counts words).
        instructions = gw.services.settings.agents["assistant"].instructions
        assert got.done["usage"] == {
            "input_tokens": 4 + len(instructions.split()),
            "output_tokens": 4,
        }
        await client.aclose()


async def test_full_speed_stream_may_merge_but_loses_nothing() -> None:
    words = " ".join(f"w{i}" for i in range(300))
    async with gateway(demo_token_delay_ms=0) as gw:
        client = await gw.open()
        got = await client.response(await client.create(words))
        assert got.text == words
        assert_well_formed(got)
        assert got.done["seq"] == 301  # 300 deltas were emitted, however they were framed
        await client.aclose()


async def test_max_tokens_ends_incomplete() -> None:
    async with gateway() as gw:
        client = await gw.open()
        rid = await client.create("x", model="demo/lorem", params={"max_tokens": 5})
        got = await client.response(rid)
        assert got.text == "Lorem ipsum dolor sit amet,"
        assert got.done["status"] == "incomplete"
        assert got.done["reason"] == "max_tokens"
        assert got.done["finish_reason"] == "length"
        await client.aclose()


async def test_session_update_sets_defaults_for_later_requests() -> None:
    async with gateway() as gw:
        client = await gw.open()
        await client.send(
            "session.update", session={"model": "demo/lorem", "params": {"max_tokens": 3}}
        )
        updated = await client.next("session.updated")
        assert updated["session"] == {
            "model": "demo/lorem",
            "agent": None,
            "params": {"temperature": None, "max_tokens": 3, "top_p": None, "stop": None},
        }
        got = await client.response(await client.create("ignored by lorem"))
        assert got.created["model"] == "lorem"
        assert got.text == "Lorem ipsum dolor"
        # A request's own fields win over the defaults, field by field.
        got = await client.response(await client.create("x", params={"max_tokens": 2}))
        assert got.text == "Lorem ipsum"
        got = await client.response(await client.create("echo me", model="demo/echo"))
        assert got.text == "echo me"
        # null clears a default.
        await client.send("session.update", session={"model": None, "params": None})
        assert (await client.next("session.updated"))["session"]["model"] is None
        got = await client.response(await client.create("back to echo"))
        assert got.text == "back to echo"
        await client.aclose()


async def test_session_update_with_unknown_model_is_rejected_whole() -> None:
    async with gateway() as gw:
        client = await gw.open()
        await client.send(
            "session.update", event_id="e1", session={"model": "nope/x", "agent": "assistant"}
        )
        err = (await client.next("error"))["error"]
        assert err["code"] == "model_not_found"
        assert err["event_id"] == "e1"
        got = await client.response(await client.create("still echo"))
        assert got.text == "still echo"  # neither field was applied
        await client.aclose()


async def test_session_update_params_merge_field_by_field() -> None:
    async with gateway() as gw:
        client = await gw.open()
        await client.send("session.update", session={"params": {"max_tokens": 5}})
        await client.next("session.updated")
        await client.send("session.update", session={"params": {"temperature": 0.5}})
        params = (await client.next("session.updated"))["session"]["params"]
        # Omitted fields stay as they are.
        assert params == {"temperature": 0.5, "max_tokens": 5, "top_p": None, "stop": None}
        got = await client.response(await client.create("x", model="demo/lorem"))
        assert got.text == "Lorem ipsum dolor sit amet,"
        # A field set to null clears that field alone; params null clears them all.
        await client.send("session.update", session={"params": {"max_tokens": None}})
        params = (await client.next("session.updated"))["session"]["params"]
        assert params == {"temperature": 0.5, "max_tokens": None, "top_p": None, "stop": None}
        await client.send("session.update", session={"params": None})
        assert (await client.next("session.updated"))["session"]["params"] is None
        await client.aclose()


async def test_an_unknown_demo_model_is_refused_before_anything_starts() -> None:
    # The demo's list of models is closed: its own check refuses the name, as
    # response.create asks it, and the update applies whole or not at all.
    async with gateway() as gw:
        client = await gw.open()
        await client.send(
            "session.update", event_id="e17", session={"model": "demo/nope", "agent": "assistant"}
        )
        err = (await client.next("error"))["error"]
        assert (err["code"], err["param"], err["event_id"]) == ("model_not_found", "model", "e17")
        await client.send("session.update", session={})
        updated = (await client.next("session.updated"))["session"]
        assert (updated["model"], updated["agent"]) == (None, None)
        await client.send(
            "response.create", request_id="r1", messages=user("hi"), model="demo/nope"
        )
        err = (await client.next("error"))["error"]
        assert (err["code"], err["request_id"]) == ("model_not_found", "r1")
        await client.aclose()


async def test_agent_instructions_reach_the_model() -> None:
    async with gateway() as gw:
        client = await gw.open()
        rid = await client.create("my laptop battery died", agent="assistant")
        got = await client.response(rid)
        # assistant's model is the configured default (demo/echo), which echoes the
        # last user message: the agent's system message did not replace it.
        assert got.text == "my laptop battery died"
        # With only the demo provider, ticket-triage runs on demo/triage.
        rid = await client.create("my laptop battery died", agent="ticket-triage")
        assert "priority" in (await client.response(rid)).text.lower()
        await client.send(
            "response.create", request_id="r2", messages=user("hi"), agent="no-such-agent"
        )
        err = (await client.next("error"))["error"]
        assert (err["code"], err["request_id"], err["param"]) == ("agent_not_found", "r2", "agent")
        await client.aclose()


async def test_ping_pong_echoes_ts() -> None:
    async with gateway() as gw:
        client = await gw.open()
        await client.send("ping", ts=12345)
        assert await client.next("pong") == {"type": "pong", "ts": 12345}
        await client.send("ping")
        assert await client.next("pong") == {"type": "pong", "ts": None}
        await client.aclose()


async def test_concurrent_responses_interleave_and_cancel_leaves_the_other() -> None:
    async with gateway(demo_token_delay_ms=5) as gw:
        client = await gw.open()
        long_text = " ".join(f"a{i}" for i in range(400))  # ~2 s at 5 ms per token
        short_text = " ".join(f"b{i}" for i in range(20))
        rid_long = await client.create(long_text)
        rid_short = await client.create(short_text)
        created_long = await client.next("response.created", lambda f: f["request_id"] == rid_long)
        # Both are running: the short one's deltas arrive while the long one streams.
        await client.next(
            "response.output_text.delta", lambda f: f["response_id"] == created_long["response_id"]
        )
        await client.send("response.cancel", response_id=created_long["response_id"])
        frames = await client.frames_of(created_long["response_id"])
        done = frames[-1]
        assert done["status"] == "cancelled"
        assert done["reason"] == "client_cancelled"
        short = await client.response(rid_short)
        assert short.text == short_text
        assert short.done["status"] == "completed"
        # Nothing for the cancelled response follows its done.
        await client.send("ping", ts=1)
        await client.next("pong")
        after = client.frames[client.frames.index(done) + 1 :]
        assert all(f.get("response_id") != created_long["response_id"] for f in after)
        await client.aclose()


async def test_one_running_response_per_conversation() -> None:
    async with gateway(demo_token_delay_ms=20) as gw:
        client = await gw.open()
        rid = await client.create("a b c d e f", conversation_id="c1")
        await client.send(
            "response.create", request_id="r-busy", messages=user("x"), conversation_id="c1"
        )
        err = (await client.next("error"))["error"]
        assert (err["code"], err["request_id"]) == ("conversation_busy", "r-busy")
        await client.response(rid)
        # Once it is done, the conversation takes a new response.
        got = await client.response(await client.create("next turn", conversation_id="c1"))
        assert got.text == "next turn"
        await client.aclose()


async def test_too_many_concurrent_responses() -> None:
    async with gateway(demo_token_delay_ms=50, max_concurrent_responses=2) as gw:
        client = await gw.open()
        first = [await client.create("a b c d e f g h") for _ in range(2)]
        await client.send("response.create", request_id="r-3", messages=user("x"))
        err = (await client.next("error"))["error"]
        assert err["code"] == "too_many_responses"
        assert err["request_id"] == "r-3"
        assert err["retryable"] is True
        for rid in first:
            await client.send("response.cancel", request_id=rid)
        for rid in first:
            assert (await client.response(rid)).done["status"] == "cancelled"
        await client.aclose()


async def test_many_sockets_stream_independently() -> None:
    async with gateway(demo_token_delay_ms=1) as gw:
        clients = [await gw.open() for _ in range(10)]
        results: dict[int, str] = {}

        async def run(index: int) -> None:
            got = await clients[index].response(
                await clients[index].create(f"socket {index} says hi")
            )
            results[index] = got.text

        async with anyio.create_task_group() as tg:
            for index in range(len(clients)):
                tg.start_soon(run, index)
        assert results == {i: f"socket {i} says hi" for i in range(10)}
        for client in clients:
            await client.aclose()
