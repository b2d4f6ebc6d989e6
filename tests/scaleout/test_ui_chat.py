"""The UI Message Stream across instances: a chat answered on A is resumed and stopped
through B (lookup by chat id in Redis), and the chat is busy on both while it runs."""

from __future__ import annotations

import pytest

from tests.fakes import Scenario
from tests.gateway.ui._support import Parts, body
from tests.redis_server import RedisServer
from tests.scaleout._cluster import cluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TOKENS = [f" t{i}" for i in range(200)]
PATH = "/api/v1/ui/chat"


async def test_resume_and_stop_on_b_a_chat_answered_on_a(redis_server: RedisServer) -> None:
    async with cluster(redis_server) as c:
        c.upstream.queue(Scenario(tokens=TOKENS, delay_s=0.05))
        async with (
            c.a.http() as on_a,
            c.b.http() as on_b,
            on_a.stream("POST", PATH, json=body("hello", chat_id="chat-x")) as answer,
        ):
            assert answer.status_code == 200
            first = Parts(answer)
            await first.until("text-delta")
            (upstream_call,) = await c.upstream.wait_for_requests(1)

            # Busy on B too: a second answer in the same chat is refused, typed.
            busy = await on_b.post(PATH, json=body("again", chat_id="chat-x"))
            assert busy.status_code == 409, busy.text
            assert busy.json()["error"]["code"] == "conversation_busy"

            async with on_b.stream("GET", f"{PATH}/chat-x/stream") as resumed:
                assert resumed.status_code == 200
                second = Parts(resumed)
                await second.until("text-delta")
                stop = await on_b.post(f"{PATH}/chat-x/stop")
                assert stop.json() == {"id": "chat-x", "stopped": True}
                await upstream_call.ended.wait()
                assert upstream_call.outcome == "disconnected"  # A closed it
                assert upstream_call.chunks_sent < len(TOKENS)
                await second.rest()
            await first.rest()
        for parts in (first, second):
            assert "abort" in parts.types, parts.types
            assert parts.text == "".join(TOKENS)[: len(parts.text)]
        # The resumed stream replays from the start: it holds at least what A's had.
        assert second.text.startswith(first.text[: len(second.text)])
        async with c.b.http() as on_b:
            gone = await on_b.get(f"{PATH}/chat-x/stream")
            assert gone.status_code == 204
