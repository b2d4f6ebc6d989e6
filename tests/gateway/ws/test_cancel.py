"""Stop: ``response.cancel`` ends the response and closes the provider's HTTP stream."""

from __future__ import annotations

import anyio
import pytest

from tests.fakes import Scenario
from tests.gateway.ws._support import fake_upstream, gateway

pytestmark = pytest.mark.anyio

SLOW = Scenario(tokens=[f" t{i}" for i in range(500)], delay_s=0.01)


@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_cancel_mid_stream_closes_the_upstream(provider: str) -> None:
    async with fake_upstream(provider) as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(SLOW)
        model = "openai/gpt-4o-mini" if provider == "openai" else "ollama/llama3.2:latest"
        client = await gw.open()
        rid = await client.create("hi", model=model)
        created = await client.next("response.created")
        response_id = created["response_id"]
        assert created["provider"] == provider
        for _ in range(3):
            await client.next("response.output_text.delta")
        await client.send("response.cancel", response_id=response_id, event_id="stop-1")
        frames = await client.frames_of(response_id)
        done = frames[-1]
        assert done["type"] == "response.done"
        assert done["status"] == "cancelled"
        assert done["reason"] == "client_cancelled"
        assert done["request_id"] == rid
        (record,) = upstream.requests
        with anyio.fail_after(1):
            await record.ended.wait()
        assert record.outcome == "disconnected"
        assert record.chunks_sent < len(SLOW.tokens)
        # Nothing more arrives for it: a later pong is the next frame on the socket.
        await client.send("ping", ts="after")
        pong = await client.next()
        assert pong == {"type": "pong", "ts": "after"}
        assert upstream.active_streams == 0
        await client.aclose()


async def test_cancel_by_request_id() -> None:
    async with gateway(demo_token_delay_ms=20) as gw:
        client = await gw.open()
        rid = await client.create("a b c d e f g h i j")
        await client.next("response.output_text.delta")
        await client.send("response.cancel", request_id=rid)
        got = await client.response(rid)
        assert got.done["status"] == "cancelled"
        assert len(got.deltas) < 10
        with anyio.fail_after(1):
            await gw.manager.wait_idle()
        assert gw.manager.active_responses == 0
        await client.aclose()


async def test_cancel_of_a_finished_response_is_a_no_op() -> None:
    async with gateway() as gw:
        client = await gw.open()
        got = await client.response(await client.create("done already"))
        await client.send("response.cancel", response_id=got.response_id)
        await client.send("ping", ts=2)
        assert await client.next() == {"type": "pong", "ts": 2}
        await client.aclose()


async def test_cancel_of_an_unknown_id_is_a_typed_error() -> None:
    async with gateway() as gw:
        client = await gw.open()
        await client.send("response.cancel", response_id="resp_nope", event_id="e7")
        err = (await client.next("error"))["error"]
        assert err["code"] == "response_not_found"
        assert err["response_id"] == "resp_nope"
        assert err["event_id"] == "e7"
        await client.send("response.cancel", request_id="req-nope")
        err = (await client.next("error"))["error"]
        assert (err["code"], err["request_id"]) == ("response_not_found", "req-nope")
        await client.aclose()


async def test_other_sockets_cannot_cancel_when_keys_differ() -> None:
    keys = ["key-a", "key-b"]
    async with gateway(client_keys=keys, demo_token_delay_ms=20) as gw:
        alice = await gw.open(additional_headers={"Authorization": "Bearer key-a"})
        mallory = await gw.open(additional_headers={"Authorization": "Bearer key-b"})
        rid = await alice.create("a b c d e f")
        created = await alice.next("response.created")
        await mallory.send("response.cancel", response_id=created["response_id"])
        assert (await mallory.next("error"))["error"]["code"] == "response_not_found"
        frames = await alice.frames_of(created["response_id"])
        assert frames[-1]["status"] == "completed"
        assert frames[-1]["request_id"] == rid
        await alice.aclose()
        await mallory.aclose()
