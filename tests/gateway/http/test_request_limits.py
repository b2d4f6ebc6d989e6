"""Request limits on the HTTP API: bodies are counted while they arrive, never buffered whole."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
import pytest

from tests.gateway.http._support import Gateway, gateway, user

pytestmark = pytest.mark.anyio

LIMIT = 64 * 1024


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) >= {"message", "type", "code", "param"}
    return body


async def still_serves(gw: Gateway) -> None:
    async with gw.http() as http:
        ok = await http.post(
            "/api/v1/chat/completions", json={"model": "demo/echo", "messages": user("hi")}
        )
    assert ok.status_code == 200


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async with gateway(max_request_bytes=LIMIT) as gw:
        body = orjson.dumps({"model": "demo/echo", "messages": user("x" * (LIMIT * 2))})
        async with gw.http() as http:
            response = await http.post(
                "/api/v1/chat/completions",
                content=body,
                headers={"content-type": "application/json"},
            )
        assert response.status_code == 413
        error = error_of(response)
        assert error["code"] == "request_too_large"
        assert "GATEWAY_MAX_REQUEST_BYTES" in error["message"]
        assert response.headers["content-type"].startswith("application/json")
        await still_serves(gw)


async def test_a_chunked_body_is_refused_at_the_first_chunk_past_the_limit() -> None:
    """The 413 arrives while the client is still sending: nothing waits for (or keeps) the rest."""
    async with gateway(max_request_bytes=LIMIT) as gw:
        host, port = gw.base.removeprefix("http://").split(":")
        stream = await anyio.connect_tcp(host, int(port))
        async with stream:
            await stream.send(
                b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            chunk = b"x" * 16384
            for _ in range(LIMIT // len(chunk) + 2):  # just past the limit, never finished
                await stream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            received = b""
            with anyio.fail_after(10):
                while b"\r\n\r\n" not in received:
                    received += await stream.receive()
        assert received.startswith(b"HTTP/1.1 413 "), received[:80]
        await still_serves(gw)


async def test_deep_nesting_is_named_as_such() -> None:
    async with gateway() as gw, gw.http() as http:
        response = await http.post(
            "/api/v1/chat/completions",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "bad_request"
    assert "nests deeper than 1024 levels" in error["message"]


async def test_malformed_json_still_says_not_valid_json() -> None:
    async with gateway() as gw, gw.http() as http:
        response = await http.post(
            "/api/v1/chat/completions",
            content=b'{"model": ',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert "not valid JSON" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("overrides", "messages", "setting"),
    [
        ({"max_messages": 3}, user("a") * 4, "GATEWAY_MAX_MESSAGES"),
        ({"max_request_chars": 100}, user("a" * 60) * 2, "GATEWAY_MAX_REQUEST_CHARS"),
    ],
    ids=["messages", "characters"],
)
async def test_message_count_and_total_characters_are_limited(
    overrides: dict[str, Any], messages: list[Any], setting: str
) -> None:
    async with gateway(**overrides) as gw:
        client = gw.openai()
        with pytest.raises(Exception) as caught:
            await client.chat.completions.create(model="demo/echo", messages=messages)
        assert getattr(caught.value, "status_code", None) == 413
        body = getattr(caught.value, "body", None)
        assert isinstance(body, dict)
        assert body["code"] == "request_too_large"
        assert body["param"] == "messages"
        assert setting in body["message"]
        await still_serves(gw)
