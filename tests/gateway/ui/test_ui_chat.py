"""``/api/v1/ui/chat``: the UI Message Stream over real sockets (uvicorn + httpx).

Stop and disconnect are asserted at the fake upstream: whether the gateway's
HTTP request to the provider was closed, and when.
"""

from __future__ import annotations

import time

import anyio
import pytest

from tests.fakes import Scenario
from tests.gateway.ui._support import DONE, body, fake_upstream, gateway, open_stream

pytestmark = pytest.mark.anyio

URL = "/api/v1/ui/chat"
SLOW = Scenario(tokens=[f" t{i}" for i in range(400)], delay_s=0.01)
OPENAI = "openai/gpt-4o-mini"


async def test_a_text_answer_is_the_documented_stream() -> None:
    async with gateway() as gw, gw.http() as http:
        async with open_stream(http, "POST", URL, json=body("Hello there, gateway!")) as parts:
            response = parts.response
            assert response.status_code == 200
            headers = response.headers
            assert headers["content-type"] == "text/event-stream"
            assert headers["cache-control"] == "no-cache"
            assert headers["x-vercel-ai-ui-message-stream"] == "v1"
            assert headers["x-accel-buffering"] == "no"
            assert headers["x-request-id"].startswith("ui_")
            seen = await parts.rest()
        types = parts.types
        assert types[:3] == ["start", "start-step", "text-start"]
        assert types[-4:] == ["text-end", "finish-step", "finish", DONE]
        assert set(types[3:-4]) == {"text-delta"}
        assert parts.text == "Hello there, gateway!"
        start, finish = seen[0], seen[-2]
        assert isinstance(start, dict) and isinstance(finish, dict)
        assert start["messageId"].startswith("resp_")
        assert start["messageMetadata"] == {
            "model": "echo",
            "provider": "demo",
            "agent": "assistant",
        }
        assert finish["finishReason"] == "stop"
        usage = finish["messageMetadata"]["usage"]
        assert usage["outputTokens"] > 0
        assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
        ids = {p["id"] for p in seen if isinstance(p, dict) and p["type"].startswith("text-")}
        assert len(ids) == 1


async def test_the_conversation_reaches_the_upstream() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        messages = [
            {"id": "s", "role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
            {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]},
            {
                "id": "a1",
                "role": "assistant",
                "parts": [
                    {"type": "step-start"},
                    {"type": "reasoning", "text": "greet back"},
                    {"type": "text", "text": "Hello"},
                    {"type": "text", "text": "!"},
                ],
            },
            {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Again"}]},
        ]
        payload = {"id": "c", "messages": messages, "trigger": "submit-message", "model": OPENAI}
        async with gw.http() as http, open_stream(http, "POST", URL, json=payload) as parts:
            await parts.rest()
        assert parts.text == "Hello, world!"
        sent = upstream.last.body["messages"]
        # After the default agent's instructions.
        assert [(m["role"], m["content"]) for m in sent][-4:] == [
            ("system", "Be brief."),
            ("user", "Hi"),
            ("assistant", "Hello!"),
            ("user", "Again"),
        ]


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        ({"id": "c", "messages": []}, 422, "messages"),
        ({"messages": [{"id": "m", "role": "user", "parts": []}]}, 422, "id"),
        ({"id": "a/b", "messages": [{"id": "m", "role": "user", "parts": []}]}, 422, "id"),
        (
            {"id": "c", "messages": [{"id": "m", "role": "user", "parts": [{"type": "file"}]}]},
            422,
            "messages[0]",
        ),
        (
            {
                "id": "c",
                "messages": [{"id": "m", "role": "user", "parts": [{"type": "text"}]}],
            },
            422,
            "messages[0]",
        ),
        (  # a string is not a number: refused, not converted
            {
                "id": "c",
                "temperature": "0.5",
                "messages": [{"id": "m", "role": "user", "parts": [{"type": "text", "text": "x"}]}],
            },
            422,
            "temperature",
        ),
    ],
)
async def test_bad_bodies_are_typed_errors(payload: object, status: int, param: str) -> None:
    async with gateway() as gw, gw.http() as http:
        response = await http.post(URL, json=payload)
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["param"] == param
        assert gw.services.sessions is not None
        assert gw.services.sessions.sessions == 0


async def test_an_unknown_model_is_a_404_before_any_stream() -> None:
    async with gateway() as gw, gw.http() as http:
        response = await http.post(URL, json=body("hi", model="nope/nothing"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"


async def test_an_upstream_failure_ends_the_stream_with_an_error_part() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=["a", "b", "c"], error_after=2))
        async with (
            gw.http() as http,
            open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as parts,
        ):
            seen = await parts.rest()
        assert parts.types[-3:] == ["text-end", "error", DONE]
        error = seen[-2]
        assert isinstance(error, dict) and error["errorText"]
        assert "sk-test" not in error["errorText"]
        assert "127.0.0.1" not in error["errorText"]


async def test_stop_closes_the_upstream_and_ends_the_stream_with_abort() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(SLOW)
        async with gw.http() as http:
            async with open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as parts:
                for _ in range(3):
                    await parts.until("text-delta")
                stop = await http.post(f"{URL}/chat-1/stop")
                assert stop.status_code == 200
                assert stop.json() == {"id": "chat-1", "stopped": True}
                seen = await parts.rest()
            assert parts.types[-3:] == ["text-end", "abort", DONE]
            abort = seen[-2]
            assert isinstance(abort, dict) and abort["reason"] == "client_cancelled"
            (record,) = upstream.requests
            with anyio.fail_after(5):
                await record.ended.wait()
            assert record.outcome == "disconnected"
            assert record.chunks_sent < len(SLOW.tokens)
            # Nothing left to stop or resume.
            again = await http.delete(f"{URL}/chat-1/stop")
            assert again.json() == {"id": "chat-1", "stopped": False}
            assert (await http.get(f"{URL}/chat-1/stream")).status_code == 204


async def test_a_disconnect_does_not_stop_and_resume_replays_it_whole_once() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=[f" w{i}" for i in range(60)], delay_s=0.01))
        async with gw.http() as http:
            async with open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as first:
                start = await first.until("start")
                for _ in range(3):
                    await first.until("text-delta")
            # Hung up: the upstream goes on.
            (record,) = upstream.requests
            assert record.outcome == "pending"
            async with open_stream(http, "GET", f"{URL}/chat-1/stream") as resumed:
                assert resumed.response.status_code == 200
                assert resumed.response.headers["x-vercel-ai-ui-message-stream"] == "v1"
                again = await resumed.until("start")
                await resumed.rest()
        assert again["messageId"] == start["messageId"]
        assert resumed.types[:3] == ["start", "start-step", "text-start"]
        assert resumed.types.count("start") == 1
        assert resumed.types[-3:] == ["finish-step", "finish", DONE]
        assert resumed.text == "".join(f" w{i}" for i in range(60))
        assert record.outcome == "completed"


async def test_a_resume_while_the_first_stream_is_open_ends_that_one_as_stopped() -> None:
    # Two tabs on one chat (or a reload before the old connection is seen to close):
    # the answer moves to the resuming stream, and the first must end, not hang.
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(Scenario(tokens=[f" w{i}" for i in range(60)], delay_s=0.01))
        async with (
            gw.http() as http,
            open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as first,
        ):
            await first.until("text-delta")
            async with open_stream(http, "GET", f"{URL}/chat-1/stream") as resumed:
                await resumed.until("text-delta")
                abort = await first.until("abort")
                assert await first.next() == DONE
                await resumed.rest()
        assert abort == {"type": "abort", "reason": "moved"}
        assert "text-end" in first.types  # its open block is closed before it ends
        assert resumed.types[-3:] == ["finish-step", "finish", DONE]
        assert resumed.text == "".join(f" w{i}" for i in range(60))
        (record,) = upstream.requests
        assert record.outcome == "completed"  # moving it did not stop the answer


async def test_stop_after_a_disconnect_closes_the_upstream() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(SLOW)
        async with gw.http() as http:
            async with open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as parts:
                await parts.until("text-delta")
            (record,) = upstream.requests
            assert record.outcome == "pending"
            assert (await http.post(f"{URL}/chat-1/stop")).json()["stopped"] is True
            with anyio.fail_after(5):
                await record.ended.wait()
            assert record.outcome == "disconnected"


async def test_stopping_a_resumed_answer_closes_the_upstream() -> None:
    async with fake_upstream() as (upstream, overrides), gateway(**overrides) as gw:
        upstream.queue(SLOW)
        async with gw.http() as http:
            async with open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as parts:
                await parts.until("text-delta")
            async with open_stream(http, "GET", f"{URL}/chat-1/stream") as resumed:
                for _ in range(3):
                    await resumed.until("text-delta")
                assert (await http.delete(f"{URL}/chat-1/stop")).json()["stopped"] is True
                await resumed.rest()
            assert resumed.types[-2:] == ["abort", DONE]
            (record,) = upstream.requests
            with anyio.fail_after(5):
                await record.ended.wait()
            assert record.outcome == "disconnected"


async def test_nobody_back_within_the_window_cancels_the_answer_and_its_upstream() -> None:
    window_ms = 400
    overrides_extra = {"resume_window_ms": window_ms}
    async with (
        fake_upstream() as (upstream, overrides),
        gateway(**overrides, **overrides_extra) as gw,
    ):
        upstream.queue(Scenario(tokens=[f" t{i}" for i in range(3000)], delay_s=0.01))
        manager = gw.services.sessions
        assert manager is not None
        async with gw.http() as http:
            async with open_stream(http, "POST", URL, json=body("x", model=OPENAI)) as parts:
                await parts.until("text-delta")
            gone_at = time.monotonic()
            (record,) = upstream.requests
            sent_at_hang_up = record.chunks_sent
            with anyio.fail_after(10):
                await record.ended.wait()
            # Nothing is left to resume once the window is over.
            assert (await http.get(f"{URL}/chat-1/stream")).status_code == 204
        assert record.outcome == "disconnected"
        assert record.ended_at is not None
        # Not before the window was over (a lower bound: a loaded machine only adds).
        assert record.ended_at - gone_at >= window_ms / 1000 * 0.95
        # Within the window the answer went on: the upstream kept streaming to the gateway.
        assert record.chunks_sent > sent_at_hang_up
        assert record.chunks_sent < 3000
        with anyio.fail_after(5):
            await manager.wait_idle()
        assert manager.active_responses == 0
        assert manager.sessions == 0


async def test_resume_with_nothing_running_is_204() -> None:
    async with gateway() as gw, gw.http() as http:
        assert (await http.get(f"{URL}/unknown/stream")).status_code == 204
        async with open_stream(http, "POST", URL, json=body("done soon")) as parts:
            await parts.rest()
        assert (await http.get(f"{URL}/chat-1/stream")).status_code == 204
        assert gw.services.sessions is not None
        assert gw.services.sessions.sessions == 0


async def test_a_second_answer_while_one_runs_is_409() -> None:
    async with (
        gateway(demo_token_delay_ms=20) as gw,
        gw.http() as http,
        open_stream(http, "POST", URL, json=body("a b c d e f g h")) as parts,
    ):
        await parts.until("text-delta")
        busy = await http.post(URL, json=body("again"))
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "conversation_busy"
        other = await http.post(URL, json=body("other chat", chat_id="chat-2"))
        assert other.status_code == 200
        await parts.rest()


async def test_keys_scope_chats_and_are_required_everywhere() -> None:
    async with gateway(client_keys="k1,k2", demo_token_delay_ms=20) as gw, gw.http() as http:
        for method, path in [
            ("POST", URL),
            ("GET", f"{URL}/chat-1/stream"),
            ("POST", f"{URL}/chat-1/stop"),
            ("DELETE", f"{URL}/chat-1/stop"),
        ]:
            response = await http.request(method, path, json=body("x"))
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == "unauthorized"
        k1 = {"authorization": "Bearer k1"}
        k2 = {"authorization": "Bearer k2"}
        async with open_stream(http, "POST", URL, json=body("a b c d e f"), headers=k1) as parts:
            await parts.until("text-delta")
            # Another key neither sees nor stops it.
            assert (await http.get(f"{URL}/chat-1/stream", headers=k2)).status_code == 204
            stop = await http.post(f"{URL}/chat-1/stop", headers=k2)
            assert stop.json()["stopped"] is False
            await parts.rest()
        assert parts.types[-2:] == ["finish", DONE]


async def test_cors_preflight_allows_the_stop_route() -> None:
    origin = "http://app.example"
    async with gateway(allowed_origins=origin) as gw, gw.http() as http:
        response = await http.options(
            f"{URL}/chat-1/stop",
            headers={"origin": origin, "access-control-request-method": "DELETE"},
        )
        assert response.status_code == 200
        assert "DELETE" in response.headers["access-control-allow-methods"]


async def test_every_answer_is_cleaned_up() -> None:
    async with gateway() as gw, gw.http() as http:
        for i in range(3):
            async with open_stream(http, "POST", URL, json=body("x y", chat_id=f"c{i}")) as parts:
                await parts.rest()
        manager = gw.services.sessions
        assert manager is not None
        with anyio.fail_after(5):
            await manager.wait_idle()
        assert manager.sessions == 0
        assert manager.active_responses == 0


async def test_a_drain_cuts_a_running_answer_off_as_interrupted_and_refuses_new_ones() -> None:
    async with (
        gateway(demo_token_delay_ms=50, drain_timeout_s=0.2) as gw,
        gw.http() as http,
        open_stream(http, "POST", URL, json=body(" ".join(["slow"] * 200))) as parts,
    ):
        await parts.until("text-delta")
        gw.services.lifecycle.start_drain()
        seen = await parts.rest()
        assert parts.types[-4:] == ["text-end", "finish-step", "finish", DONE]
        finish = seen[-2]
        assert isinstance(finish, dict)
        assert finish["finishReason"] == "interrupted"
        assert finish["messageMetadata"]["reason"] == "server_shutdown"
        refused = await http.post(URL, json=body("late", chat_id="late"))
        assert refused.status_code == 503
        with anyio.fail_after(5):
            await gw.services.lifecycle.drained.wait()
