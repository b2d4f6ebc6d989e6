"""Bad input gets a typed error naming what it can; the socket and everyone else go on."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from tests.gateway.ws._support import Client, gateway, user

pytestmark = pytest.mark.anyio


async def error_for(client: Client, raw: str | bytes) -> dict[str, Any]:
    await client.send_raw(raw)
    frame = await client.next("error")
    body: dict[str, Any] = frame["error"]
    assert set(body) >= {"type", "code", "message", "retryable"}
    return body


async def still_alive(client: Client) -> None:
    await client.send("ping", ts="alive")
    assert (await client.next("pong"))["ts"] == "alive"


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


CREATE = {"type": "response.create", "request_id": "r1", "messages": user("hi")}

CASES: list[tuple[str, str | bytes, str, dict[str, Any]]] = [
    ("invalid json", "{nope", "invalid_message", {}),
    ("not an object", "[1, 2]", "invalid_message", {}),
    ("binary frame", b'{"type": "ping"}', "invalid_message", {}),
    ("no type", dumps({"event_id": "e1"}), "invalid_message", {"event_id": "e1", "param": "type"}),
    (
        "unknown type",
        dumps({"type": "response.explode", "event_id": "e2"}),
        "unknown_message_type",
        {"event_id": "e2", "param": "type"},
    ),
    (
        "missing field",
        dumps({"type": "response.create", "request_id": "r9", "event_id": "e3"}),
        "validation_error",
        {"event_id": "e3", "request_id": "r9", "param": "messages"},
    ),
    (
        "wrong type",
        dumps({**CREATE, "messages": "hi"}),
        "validation_error",
        {"request_id": "r1", "param": "messages"},
    ),
    (
        "no coercion",
        dumps({**CREATE, "params": {"max_tokens": "5"}}),
        "validation_error",
        {"param": "params.max_tokens"},
    ),
    ("typo field", dumps({**CREATE, "modle": "x"}), "validation_error", {"param": "modle"}),
    ("empty messages", dumps({**CREATE, "messages": []}), "validation_error", {}),
    # param is the path as the client wrote it, never the validator's own: no union
    # member (ts.int, tool_choice.literal[...]) and no tag (messages.0.user.content).
    (
        "union member",
        dumps({"type": "ping", "ts": [1]}),
        "validation_error",
        {"param": "ts"},
    ),
    (
        "tagged union",
        dumps({**CREATE, "messages": [{"role": "user", "content": 5}]}),
        "validation_error",
        {"param": "messages[0].content"},
    ),
    (
        "literal member",
        dumps({**CREATE, "tool_choice": "sometimes"}),
        "validation_error",
        {"param": "tool_choice"},
    ),
    (
        "wrong tag",
        dumps({**CREATE, "messages": [{"role": "bot", "content": "x"}]}),
        "validation_error",
        {"param": "messages[0].role"},
    ),
    (
        "deep in a tagged member",
        dumps(
            {
                **CREATE,
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": 1}}],
                    }
                ],
            }
        ),
        "validation_error",
        {"param": "messages[0].tool_calls[0].function.name"},
    ),
    (
        "under a tag named like its field",
        dumps({**CREATE, "response_format": {"type": "json_schema"}}),
        "validation_error",
        {"param": "response_format.json_schema"},
    ),
    (
        "list member of a union",
        dumps({**CREATE, "params": {"stop": [5]}}),
        "validation_error",
        {"param": "params.stop[0]"},
    ),
    ("cancel without id", dumps({"type": "response.cancel"}), "validation_error", {}),
    (
        "resume wrong type",
        dumps({"type": "response.resume", "response_id": "x", "epoch": 1, "last_seq": "3"}),
        "validation_error",
        {"response_id": "x", "param": "last_seq"},
    ),
    (
        "unknown model",
        dumps({**CREATE, "model": "nosuchprovider/model-x", "event_id": "e4"}),
        "model_not_found",
        {"request_id": "r1", "event_id": "e4", "param": "model"},
    ),
    ("unknown agent", dumps({**CREATE, "agent": "ghost"}), "agent_not_found", {"request_id": "r1"}),
]


@pytest.mark.parametrize(
    ("raw", "code", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_is_a_typed_error_and_the_socket_goes_on(
    raw: str | bytes, code: str, expected: dict[str, Any]
) -> None:
    async with gateway() as gw:
        client = await gw.open()
        body = await error_for(client, raw)
        assert body["code"] == code
        for key, value in expected.items():
            assert body[key] == value, key
        assert body["retryable"] is False
        await still_alive(client)
        await client.aclose()


async def test_garbage_does_not_disturb_running_responses_or_other_sessions() -> None:
    async with gateway(demo_token_delay_ms=2) as gw:
        noisy = await gw.open()
        quiet = await gw.open()
        text = " ".join(f"w{i}" for i in range(30))
        rid_noisy = await noisy.create(text)
        rid_quiet = await quiet.create(text)

        async def spam() -> None:
            for raw in ["{", "[]", dumps({"type": "nope"}), dumps({"type": "response.cancel"})]:
                await noisy.send_raw(raw)
            await noisy.send_raw(b"\x00\x01")

        async with anyio.create_task_group() as tg:
            tg.start_soon(spam)
        assert (await noisy.response(rid_noisy)).text == text
        assert (await quiet.response(rid_quiet)).text == text
        codes = [f["error"]["code"] for f in noisy.frames if f["type"] == "error"]
        assert codes == [
            "invalid_message",
            "invalid_message",
            "unknown_message_type",
            "validation_error",
            "invalid_message",
        ]
        assert not any(f["type"] == "error" for f in quiet.frames)
        await noisy.aclose()
        await quiet.aclose()


# A server with a frame limit above max_message_bytes (not chat-gateway serve, whose
# limit is max_message_bytes itself) reads the message and answers the error first.
_ABOVE_THE_LIMIT = {"ws_max_size": 16 * 1024 * 1024}


async def test_oversize_message_closes_1009() -> None:
    async with gateway(max_message_bytes=1024, uvicorn=_ABOVE_THE_LIMIT) as gw:
        client = await gw.open()
        await client.send("response.create", request_id="big", messages=user("x" * 2000))
        err = (await client.next("error"))["error"]
        assert err["code"] == "message_too_big"
        assert await client.closed() == 1009


async def test_oversize_in_utf8_bytes_not_characters() -> None:
    async with gateway(max_message_bytes=1024, uvicorn=_ABOVE_THE_LIMIT) as gw:
        client = await gw.open()
        # 400 characters but 1600 bytes.
        await client.send("response.create", request_id="big", messages=user("€" * 400 + "é"))
        assert (await client.next("error"))["error"]["code"] == "message_too_big"
        assert await client.closed() == 1009


async def test_uvicorn_size_limit_also_closes_1009() -> None:
    async with gateway(uvicorn={"ws_max_size": 4096}) as gw:
        client = await gw.open()
        await client.send("response.create", request_id="big", messages=user("x" * 10_000))
        assert await client.closed() == 1009


async def test_deep_nesting_is_named_as_such() -> None:
    async with gateway() as gw:
        client = await gw.open()
        body = await error_for(client, "[" * 100_000 + "]" * 100_000)
        assert body["code"] == "invalid_message"
        assert "nests deeper than 1024 levels" in body["message"]
        await still_alive(client)
        await client.aclose()


async def test_under_the_production_frame_limit_a_257_kib_message_closes_1009_without_error() -> (
    None
):
    # chat-gateway serve sets uvicorn's ws_max_size to max_message_bytes (gateway/server.py);
    # docs/protocol.md says what a client then sees: 1009 and no error frame.
    limit = 256 * 1024
    async with gateway(max_message_bytes=limit, uvicorn={"ws_max_size": limit}) as gw:
        client = await gw.open()
        await client.send("response.create", request_id="big", messages=user("x" * (257 * 1024)))
        assert await client.closed() == 1009
        assert not any(f["type"] == "error" for f in client.frames)
