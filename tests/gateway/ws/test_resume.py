"""A network blip: responses outlive their socket for the resume window, exactly once."""

from __future__ import annotations

import anyio
import pytest

from tests.fakes import Scenario
from tests.gateway.ws._support import Client, Gateway, fake_upstream, gateway

pytestmark = pytest.mark.anyio

TOKENS = [f" t{i}" for i in range(60)]
FULL = "".join(TOKENS)
MODEL = "openai/gpt-4o-mini"


async def start(
    gw: Gateway, request_id: str = "req-blip", deltas: int = 3
) -> tuple[Client, dict, int, str]:  # type: ignore[type-arg]
    """A socket with a running response; returns (client, created, last_seq, text so far)."""
    client = await gw.open()
    await client.create("hi", request_id=request_id, model=MODEL)
    created = await client.next("response.created")
    seen = [await client.next("response.output_text.delta") for _ in range(deltas)]
    return client, created, seen[-1]["seq"], "".join(d["delta"] for d in seen)


async def test_disconnect_without_window_cancels_the_upstream() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS, delay_s=0.02))
        async with gateway(resume_window_ms=0, **overrides) as gw:
            client, _, _, _ = await start(gw)
            await client.aclose()
            (record,) = upstream.requests
            with anyio.fail_after(1):
                await record.ended.wait()
            assert record.outcome == "disconnected"
            with anyio.fail_after(1):
                await gw.manager.wait_idle()
            assert gw.manager.active_responses == 0
            assert gw.manager.retained_responses == 0


async def test_resume_on_a_new_socket_replays_then_continues_exactly_once() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS, delay_s=0.01))
        async with gateway(resume_window_ms=5_000, **overrides) as gw:
            client, created, last_seq, before = await start(gw)
            await client.aclose()
            # The response keeps running while no socket is attached.
            (record,) = upstream.requests
            assert record.outcome == "pending"

            again = await gw.open()
            await again.send(
                "response.resume",
                response_id=created["response_id"],
                epoch=created["epoch"],
                last_seq=last_seq,
            )
            result = await again.next("resume.result")
            assert result == {
                "type": "resume.result",
                "response_id": created["response_id"],
                "recovered": True,
                "from_seq": last_seq + 1,
            }
            frames = await again.frames_of(created["response_id"])
            deltas = [f for f in frames if f["type"] == "response.output_text.delta"]
            assert deltas[0]["seq"] > last_seq
            assert before + "".join(d["delta"] for d in deltas) == FULL
            assert frames[-1]["status"] == "completed"
            assert frames[-1]["usage"]["output_tokens"] == len(TOKENS)
            assert len(upstream.requests) == 1
            assert record.outcome == "completed"
            await again.aclose()


async def test_resume_after_the_response_finished_while_away() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS, delay_s=0.002))
        async with gateway(resume_window_ms=5_000, **overrides) as gw:
            client, created, last_seq, before = await start(gw)
            await client.aclose()
            (record,) = upstream.requests
            with anyio.fail_after(2):
                await record.ended.wait()
            again = await gw.open()
            await again.send(
                "response.resume",
                response_id=created["response_id"],
                epoch=created["epoch"],
                last_seq=last_seq,
            )
            assert (await again.next("resume.result"))["recovered"] is True
            frames = await again.frames_of(created["response_id"])
            text = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
            assert before + text == FULL
            assert frames[-1]["type"] == "response.done"
            await again.aclose()


async def test_resume_after_the_window_expired_is_not_recovered() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS * 10, delay_s=0.01))
        async with gateway(resume_window_ms=100, **overrides) as gw:
            client, created, last_seq, _ = await start(gw)
            await client.aclose()
            (record,) = upstream.requests
            with anyio.fail_after(2):
                await record.ended.wait()  # the window ran out: the upstream was cancelled
            assert record.outcome == "disconnected"
            again = await gw.open()
            await again.send(
                "response.resume",
                response_id=created["response_id"],
                epoch=created["epoch"],
                last_seq=last_seq,
                event_id="resume-1",
            )
            result = await again.next("resume.result")
            assert (result["recovered"], result["from_seq"]) == (False, None)
            err = (await again.next("error"))["error"]
            assert err["code"] == "response_not_found"
            assert err["event_id"] == "resume-1"
            assert err["response_id"] == created["response_id"]
            await again.aclose()


async def test_resume_naming_another_epoch_is_not_recovered() -> None:
    async with gateway(demo_token_delay_ms=20) as gw:
        client = await gw.open()
        await client.create("a b c d e f g")
        created = await client.next("response.created")
        await client.send(
            "response.resume",
            response_id=created["response_id"],
            epoch=created["epoch"] + 1,
            last_seq=0,
        )
        assert (await client.next("resume.result"))["recovered"] is False
        await client.aclose()


async def test_create_with_a_known_request_id_after_reconnect_is_idempotent() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS, delay_s=0.01))
        async with gateway(resume_window_ms=5_000, **overrides) as gw:
            client, created, _, _ = await start(gw, request_id="req-same")
            await client.aclose()
            again = await gw.open()
            # The client never saw a done, so it sends the same request again.
            got = await again.response(await again.create("hi", request_id="req-same", model=MODEL))
            assert got.created["response_id"] == created["response_id"]
            assert got.text == FULL  # replayed from the start, then live: whole, once
            assert got.done["status"] == "completed"
            assert len(upstream.requests) == 1
            await again.aclose()


async def test_duplicate_request_id_on_the_same_socket_is_an_error() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS, stall_after=2))  # runs until cancelled
        async with gateway(**overrides) as gw:
            client = await gw.open()
            rid = await client.create("hi", model=MODEL)
            created = await client.next("response.created")
            await client.create("x", request_id=rid, model=MODEL, event_id="dup")
            err = (await client.next("error"))["error"]
            assert (err["code"], err["request_id"], err["event_id"]) == (
                "duplicate_request",
                rid,
                "dup",
            )
            assert "already in progress" in err["message"]
            # It names the response the request_id stands for.
            assert (err["response_id"], err["epoch"]) == (created["response_id"], created["epoch"])
            await client.send("response.cancel", request_id=rid)
            assert (await client.frames_of(created["response_id"]))[-1]["status"] == "cancelled"
            # After its response.done (still retained): a duplicate, no longer "in progress".
            await client.create("x", request_id=rid, model=MODEL, event_id="dup2")
            err = (await client.next("error"))["error"]
            assert (err["code"], err["event_id"], err["response_id"]) == (
                "duplicate_request",
                "dup2",
                created["response_id"],
            )
            assert "was already answered" in err["message"]
            await client.aclose()


async def test_a_recreate_that_cannot_be_replayed_whole_names_the_response_to_resume() -> None:
    # A buffer of 3 events holds only the end of a 7-event answer: no replay from seq 0.
    async with gateway(resume_window_ms=5_000, replay_max_events=3) as gw:
        client = await gw.open()
        got = await client.response(await client.create("a b c d e", request_id="req-evicted"))
        await client.aclose()
        again = await gw.open()
        await again.create("a b c d e", request_id="req-evicted", event_id="e9")
        err = (await again.next("error"))["error"]
        assert (err["code"], err["event_id"], err["request_id"]) == (
            "duplicate_request",
            "e9",
            "req-evicted",
        )
        assert (err["response_id"], err["epoch"]) == (got.response_id, got.created["epoch"])
        # What the error advises works with what it carries.
        created = {"response_id": err["response_id"], "epoch": err["epoch"]}
        last_seq = got.deltas[-1]["seq"]
        assert (await again.resume(created, last_seq))["recovered"] is True
        (done,) = await again.frames_of(got.response_id)
        assert done == got.done
        await again.aclose()


async def test_a_response_resumed_elsewhere_ends_on_the_new_socket_alone() -> None:
    async with fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=TOKENS, stall_after=3))
        async with gateway(resume_window_ms=5_000, **overrides) as gw:
            old, created, last_seq, _ = await start(gw, deltas=1)
            new = await gw.open()
            assert (await new.resume(created, last_seq))["recovered"] is True
            await new.send("response.cancel", response_id=created["response_id"])
            done = (await new.frames_of(created["response_id"]))[-1]
            assert (done["type"], done["status"]) == ("response.done", "cancelled")
            # The old socket, still open, is told of the move once, and gets nothing
            # more of it: no done either. Its pong comes after anything queued before.
            moved = await old.next("response.moved")
            assert moved == {
                "type": "response.moved",
                "response_id": created["response_id"],
                "request_id": created["request_id"],
            }
            await old.send("ping", ts="after")
            await old.next("pong")
            mine = [f for f in old.frames if f.get("response_id") == created["response_id"]]
            assert mine[-1] == moved
            assert all(f["seq"] < done["seq"] for f in mine[:-1])
            assert "response.done" not in [f["type"] for f in mine]
            await old.aclose()
            await new.aclose()
