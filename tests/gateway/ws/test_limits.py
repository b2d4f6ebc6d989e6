"""Per-socket limits: message rate by cost (error, then 1008), the flood ceiling, idle timeout."""

from __future__ import annotations

import anyio
import pytest

from tests.fakes import FakeUpstream, Scenario
from tests.gateway.ws._support import WAIT_S, fake_upstream, gateway

MODEL = "openai/gpt-4o-mini"

pytestmark = pytest.mark.anyio


async def test_rate_limit_refuses_creates_by_name_then_closes_1008_cancelling() -> None:
    async with gateway(
        messages_per_second=1, message_burst=2, max_rate_violations=3, demo_token_delay_ms=50
    ) as gw:
        client = await gw.open()
        slow = await client.create(" ".join(["word"] * 200), event_id="c0")  # ~10 s
        created = await client.next("response.created")
        await client.create("quick", event_id="c1")
        refused = [await client.create("refused", event_id=f"r{i}") for i in range(3)]
        errors = [(await client.next("error"))["error"] for _ in range(3)]
        assert [e["code"] for e in errors] == ["rate_limited"] * 3
        # Every refusal names the message it refuses.
        assert [e["request_id"] for e in errors] == refused
        assert [e["event_id"] for e in errors] == [f"r{i}" for i in range(3)]
        assert all(e["retryable"] is True for e in errors)
        assert all(0 < e["retry_after_ms"] <= 1000 for e in errors)
        # Three refusals in a row: closed, and the running answer is cancelled rather
        # than left to the resume window.
        done = await client.next("response.done", lambda f: f["request_id"] == slow)
        assert (done["status"], done["reason"]) == ("cancelled", "policy_violation")
        assert done["response_id"] == created["response_id"]
        assert await client.closed() == 1008
        assert not any(
            f["type"] == "response.created" and f["request_id"] in refused for f in client.frames
        )
        with anyio.fail_after(WAIT_S):
            await gw.manager.wait_idle()
        assert gw.manager.active_responses == 0


async def test_cancel_and_ping_never_spend_the_message_bucket() -> None:
    async with gateway(messages_per_second=0.1, message_burst=1, demo_token_delay_ms=50) as gw:
        client = await gw.open()
        rid = await client.create(" ".join(["word"] * 200))
        created = await client.next("response.created")
        # The bucket is empty now: a create is refused...
        await client.create("refused")
        assert (await client.next("error"))["error"]["code"] == "rate_limited"
        # ...but any number of pings and cancels go through.
        for i in range(60):
            await client.send("ping", ts=i)
            await client.send("response.cancel", response_id="resp_unknown", event_id=f"x{i}")
        for i in range(60):
            assert (await client.next("pong"))["ts"] == i
            err = (await client.next("error"))["error"]
            assert (err["code"], err["event_id"]) == ("response_not_found", f"x{i}")
        await client.send("response.cancel", request_id=rid)
        got = await client.frames_of(created["response_id"])
        assert (got[-1]["status"], got[-1]["reason"]) == ("cancelled", "client_cancelled")
        limited = [f for f in client.frames if f["type"] == "error"]
        assert sum(f["error"]["code"] == "rate_limited" for f in limited) == 1
        await client.aclose()


@pytest.mark.timeout(180)
async def test_one_socket_creates_and_cancels_200_answers_every_cancel_honoured() -> None:
    """Default limits, as many answers in flight as a socket may run. Creates are paced
    by rate_limited (the client waits as told and resends); every cancel goes through
    at once, and the fake sees every upstream stream cut short."""
    total = 200
    tokens = [f" t{i}" for i in range(2000)]
    async with (
        fake_upstream(upstream=FakeUpstream(Scenario(tokens=tokens, delay_s=0.005))) as (
            upstream,
            overrides,
        ),
        gateway(**overrides) as gw,
    ):
        client = await gw.open()
        ws_limit = gw.services.settings.max_concurrent_responses
        next_index = 0
        refused = 0
        cancelled: set[str] = set()
        running: dict[str, str] = {}  # response_id -> request_id, cancel not sent yet

        async def create(index: int, delay_s: float = 0.0) -> None:
            await anyio.sleep(delay_s)  # the retry_after_ms the server asked for
            await client.create("hi", request_id=f"stop-{index}", model=MODEL, event_id=f"c{index}")

        with anyio.fail_after(150):
            async with anyio.create_task_group() as tg:
                for _ in range(ws_limit):
                    await create(next_index)
                    next_index += 1
                while len(cancelled) < total:
                    frame = await client._read()
                    kind = frame["type"]
                    if kind == "error":
                        err = frame["error"]
                        assert err["code"] == "rate_limited", err
                        assert err["event_id"] == "c" + err["request_id"].removeprefix("stop-")
                        refused += 1
                        index = int(err["request_id"].removeprefix("stop-"))
                        tg.start_soon(create, index, err["retry_after_ms"] / 1000)
                    elif kind == "response.created":
                        running[frame["response_id"]] = frame["request_id"]
                    elif kind == "response.output_text.delta":
                        # A token came: the upstream stream is open. Stop it now.
                        rid = running.pop(frame["response_id"], None)
                        if rid is not None:
                            await client.send("response.cancel", request_id=rid, event_id="stop")
                    elif kind == "response.done":
                        assert (frame["status"], frame["reason"]) == (
                            "cancelled",
                            "client_cancelled",
                        ), frame
                        cancelled.add(frame["request_id"])
                        if next_index < total:
                            await create(next_index)
                            next_index += 1
        assert refused > 0, "the creates should have hit the default message rate"
        errors = [f["error"] for f in client.frames if f["type"] == "error"]
        assert not any(e["event_id"] == "stop" for e in errors)
        records = await upstream.wait_for_requests(total)
        assert len(upstream.requests) == total
        with anyio.fail_after(WAIT_S):
            for record in records:
                await record.ended.wait()
        assert {r.outcome for r in records} == {"disconnected"}
        assert all(r.chunks_sent < len(tokens) for r in records)
        assert upstream.active_streams == 0
        await client.aclose()


async def test_a_flood_closes_1008_and_leaves_no_upstream_stream_running() -> None:
    tokens = [f" t{i}" for i in range(2000)]
    async with (
        fake_upstream(upstream=FakeUpstream(Scenario(tokens=tokens, delay_s=0.01))) as (
            upstream,
            overrides,
        ),
        gateway(**overrides) as gw,
    ):
        client = await gw.open()
        rids = [await client.create("hi", model=MODEL) for _ in range(4)]
        for rid in rids:
            created = await client.next(
                "response.created", lambda f, rid=rid: f["request_id"] == rid
            )
            await client.next(
                "response.output_text.delta",
                lambda f, r=created["response_id"]: f["response_id"] == r,
            )
        assert upstream.active_streams == 4
        for i in range(2000):  # far more than the 200/s ceiling allows
            await client.send("ping", ts=i)
        dones = [
            await client.next("response.done", lambda f, rid=rid: f["request_id"] == rid)
            for rid in rids
        ]
        assert {(d["status"], d["reason"]) for d in dones} == {("cancelled", "policy_violation")}
        assert await client.closed() == 1008
        flood = [f["error"] for f in client.frames if f["type"] == "error"]
        assert [e["code"] for e in flood] == ["rate_limited"]
        assert flood[0]["retry_after_ms"] > 0
        # The resume window (30 s by default) did not keep them: the fake saw them close.
        with anyio.fail_after(WAIT_S):
            for record in upstream.requests:
                await record.ended.wait()
        assert {r.outcome for r in upstream.requests} == {"disconnected"}
        assert upstream.active_streams == 0
        assert gw.manager.active_responses == 0


async def test_silent_socket_closes_4008_and_its_response_follows_the_disconnect_rule() -> None:
    async with gateway(idle_timeout_ms=200, resume_window_ms=0, demo_token_delay_ms=50) as gw:
        client = await gw.open()
        await client.create(" ".join(["word"] * 100))  # ~5 s, far past the idle timeout
        start = anyio.current_time()
        assert await client.closed() == 4008
        assert anyio.current_time() - start >= 0.15
        with anyio.fail_after(1):
            await gw.manager.wait_idle()
        assert gw.manager.active_responses == 0


async def test_pings_keep_a_socket_alive_past_the_idle_timeout() -> None:
    async with gateway(idle_timeout_ms=300) as gw:
        client = await gw.open()
        start = anyio.current_time()
        while anyio.current_time() - start < 0.8:
            await anyio.sleep(0.1)  # pacing the client, not synchronisation
            await client.send("ping")
            await client.next("pong")
        got = await client.response(await client.create("still here"))
        assert got.text == "still here"
        await client.aclose()
