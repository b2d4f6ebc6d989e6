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
    async with gateway(demo_token_delay_ms=10) as gw:
        client = await gw.open()
        rid = await client.create("a b c d e")
        await client.send(
            "response.create",
            request_id=rid,
            messages=[{"role": "user", "content": "x"}],
            event_id="dup",
        )
        err = (await client.next("error"))["error"]
        assert (err["code"], err["request_id"], err["event_id"]) == (
            "duplicate_request",
            rid,
            "dup",
        )
        got = await client.response(rid)
        assert got.text == "a b c d e"
        await client.aclose()
