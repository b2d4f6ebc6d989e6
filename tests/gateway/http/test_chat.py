"""``/api/v1/chat/completions`` through the official OpenAI SDK against a real gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import openai
import orjson
import pytest

from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app as openai_fake_app
from tests.gateway.http._support import Gateway, gateway, user

pytestmark = pytest.mark.anyio

TEXT = "The quick brown fox jumps over the lazy dog"
UPSTREAM_KEY = "sk-upstream-0123456789abcdef"


@contextlib.asynccontextmanager
async def with_openai_fake(**overrides: Any) -> AsyncIterator[tuple[Gateway, FakeUpstream]]:
    upstream = FakeUpstream(api_key=UPSTREAM_KEY)
    async with serve(openai_fake_app(upstream)) as fake_base:
        overrides.setdefault("retry", {"max_attempts": 1})
        async with gateway(
            openai_base_url=f"{fake_base}/v1", openai_api_key=UPSTREAM_KEY, **overrides
        ) as gw:
            yield gw, upstream


def sse_events(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\n\n")
    events = raw[:-2].split(b"\n\n")
    assert all(e.startswith(b"data: ") and b"\n" not in e for e in events), events
    return [e.removeprefix(b"data: ") for e in events]


# --- demo provider ---------------------------------------------------------------


async def test_non_streaming_echo_is_an_exact_chat_completion() -> None:
    async with gateway() as gw:
        completion = await gw.openai().chat.completions.create(
            model="demo/echo", messages=[{"role": "user", "content": TEXT}]
        )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "demo/echo"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert choice.message.role == "assistant"
    assert choice.message.content == TEXT
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(TEXT.split())
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_the_role_chunk_leaves_in_the_same_write_as_the_first_token() -> None:
    # One HTTP chunk per ASGI body message: read the raw chunked body to see the writes.
    async with gateway(demo_token_delay_ms=5) as gw:
        host, port = gw.base.removeprefix("http://").split(":")
        body = orjson.dumps({"model": "demo/echo", "stream": True, "messages": user(TEXT)})
        request = (
            f"POST /api/v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode() + body
        with anyio.fail_after(5):
            async with await anyio.connect_tcp(host, int(port)) as stream:
                await stream.send(request)
                raw = b""
                with contextlib.suppress(anyio.EndOfStream):
                    while True:
                        raw += await stream.receive()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    writes = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:  # the last chunk
            break
        writes.append(rest[:size])
        rest = rest[size + 2 :]
    events = [e for e in writes[0].split(b"\n\n") if e]
    assert len(events) == 2
    assert b'"role":"assistant"' in events[0]
    assert orjson.loads(events[1].removeprefix(b"data: "))["choices"][0]["delta"]["content"]
    # role + first word, then one write per word, then finish + [DONE]
    assert len(writes) == len(TEXT.split()) + 1


async def test_streaming_echo_yields_the_exact_text_in_openai_chunks() -> None:
    async with gateway() as gw:
        stream = await gw.openai().chat.completions.create(
            model="demo/echo", messages=user(TEXT), stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert len(chunks) == 1 + len(TEXT.split()) + 1  # role, one per word, finish
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.model == "demo/echo" and c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_include_usage_adds_a_final_usage_chunk() -> None:
    async with gateway() as gw:
        stream = await gw.openai().chat.completions.create(
            model="demo/echo",
            messages=user("one two three"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 3
    assert last.usage.total_tokens == last.usage.prompt_tokens + 3
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_sse_framing_is_exact_and_ends_with_done() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.post(
            "/api/v1/chat/completions",
            json={"model": "demo/echo", "messages": user("hi there"), "stream": True},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = sse_events(response.content)
    assert events[-1] == b"[DONE]"
    payloads = [orjson.loads(e) for e in events[:-1]]
    assert [p["choices"][0]["delta"] for p in payloads] == [
        {"role": "assistant", "content": ""},
        {"content": "hi"},
        {"content": " there"},
        {},
    ]
    assert "usage" not in payloads[0]  # only with include_usage, as OpenAI does
    assert response.headers["x-request-id"] == payloads[0]["id"]


async def test_stream_route_always_streams() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.post(
            "/api/v1/chat/completions/stream",
            json={"model": "demo/echo", "messages": user("always"), "stream": False},
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_events(response.content)[-1] == b"[DONE]"


async def test_content_parts_and_unknown_fields_are_accepted() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.post(
            "/api/v1/chat/completions",
            json={
                "model": "demo/echo",
                "messages": [
                    {"role": "developer", "content": "be nice"},
                    {"role": "user", "content": [{"type": "text", "text": "part one"}]},
                ],
                "n": 1,
                "user": "someone",
                "max_completion_tokens": 5,
                "stop": "zzz",
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "part one"


async def test_default_model_is_used_when_none_is_given() -> None:
    async with gateway(default_model="demo/echo") as gw, gw.http() as client:
        response = await client.post("/api/v1/chat/completions", json={"messages": user("x y")})
    assert response.status_code == 200
    assert response.json()["model"] == "demo/echo"
    assert response.json()["choices"][0]["message"]["content"] == "x y"


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["no-such-model", "demo/no-such-model"])
async def test_unknown_model_is_not_found(model: str, stream: bool) -> None:
    async with gateway() as gw:
        with pytest.raises(openai.NotFoundError) as caught:
            await gw.openai().chat.completions.create(
                model=model, messages=user("x"), stream=stream
            )
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


async def test_unknown_agent_is_not_found() -> None:
    async with gateway() as gw:
        with pytest.raises(openai.NotFoundError) as caught:
            await gw.openai().chat.completions.create(
                model="demo/echo", messages=user("x"), extra_body={"agent": "nobody"}
            )
    assert caught.value.code == "agent_not_found"


async def test_invalid_fields_are_422_naming_the_field() -> None:
    async with gateway() as gw:
        client = gw.openai()
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            await client.chat.completions.create(
                model="demo/echo",
                messages=[{"role": "narrator", "content": "x"}],  # type: ignore[list-item,misc]
            )
        assert caught.value.code == "validation_error"
        assert caught.value.param == "messages[0].role"
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            await client.chat.completions.create(
                model="demo/echo", messages=user("x"), temperature=7
            )
        assert caught.value.param == "temperature"
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            await client.chat.completions.create(model="demo/echo", messages=[])
        assert caught.value.param == "messages"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", "yes"),
        ("temperature", "0.5"),
        ("max_tokens", "7"),
        ("seed", True),
        ("logprobs", "false"),
        ("store", "no"),
        ("stream_options", {"include_usage": "yes"}),
    ],
)
async def test_a_value_of_the_wrong_json_type_is_refused_not_converted(
    field: str, value: object
) -> None:
    # As OpenAI does: "7" is not 7 and "yes" is not true. Converting would send
    # the provider a request the client did not write.
    body = {"model": "demo/echo", "messages": user("x"), field: value}
    if field == "stream_options":
        body["stream"] = True
    async with gateway() as gw, gw.http() as client:
        response = await client.post("/api/v1/chat/completions", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    nested = "stream_options.include_usage"
    assert error["param"] == (nested if field == "stream_options" else field)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"stop": 5}, "stop"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
async def test_param_names_the_field_as_the_client_wrote_it(
    body: dict[str, object], param: str
) -> None:
    # Not pydantic's path through its unions (messages.0.user.content.str).
    payload = {"model": "demo/echo", "messages": user("x"), **body}
    async with gateway() as gw, gw.http() as client:
        response = await client.post("/api/v1/chat/completions", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == param


async def test_an_integer_is_a_number_where_a_number_is_asked() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.post(
            "/api/v1/chat/completions",
            json={"model": "demo/echo", "messages": user("x"), "temperature": 1, "top_p": 1},
        )
    assert response.status_code == 200


async def test_malformed_json_is_400_in_openai_error_shape() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.post(
            "/api/v1/chat/completions",
            content=b'{"model": "demo/echo", "messages": [',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == "invalid_request_error"


async def test_unknown_routes_and_methods_answer_in_openai_error_shape() -> None:
    async with gateway() as gw, gw.http() as client:
        missing = await client.get("/api/v1/nothing-here")
        wrong_method = await client.get("/api/v1/chat/completions")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


# --- through the real OpenAI adapter, against the fake OpenAI ----------------------------


async def test_streams_through_the_openai_adapter() -> None:
    async with with_openai_fake() as (gw, upstream):
        stream = await gw.openai().chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=user("hello"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, world!"
    assert chunks[0].model == "openai/gpt-4o-mini"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert upstream.last.body["model"] == "gpt-4o-mini"
    assert upstream.last.outcome == "completed"


async def test_upstream_503_before_first_token_is_http_503() -> None:
    async with with_openai_fake() as (gw, upstream):
        upstream.queue(Scenario(status=503))
        with pytest.raises(openai.InternalServerError) as caught:
            await gw.openai().chat.completions.create(
                model="openai/gpt-4o-mini", messages=user("hello"), stream=True
            )
    assert caught.value.status_code == 503
    assert caught.value.code == "upstream_unavailable"
    assert UPSTREAM_KEY not in str(caught.value.body)


async def test_upstream_429_keeps_its_retry_after() -> None:
    async with with_openai_fake() as (gw, upstream), gw.http() as client:
        upstream.queue(Scenario(status=429, retry_after="3"))
        response = await client.post(
            "/api/v1/chat/completions",
            json={"model": "openai/gpt-4o-mini", "messages": user("x"), "stream": True},
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "upstream_rate_limited"


async def test_error_after_first_token_is_an_sse_error_event_then_done() -> None:
    async with with_openai_fake() as (gw, upstream), gw.http() as client:
        upstream.queue(Scenario(tokens=["a", "b", "c", "d"], error_after=2))
        response = await client.post(
            "/api/v1/chat/completions",
            json={"model": "openai/gpt-4o-mini", "messages": user("x"), "stream": True},
        )
    assert response.status_code == 200
    events = sse_events(response.content)
    # A cut answer ends like a whole one ([DONE]), after an error event saying so.
    assert events[-1] == b"[DONE]"
    assert events.count(b"[DONE]") == 1
    contents = [orjson.loads(e)["choices"][0]["delta"].get("content") for e in events[:-2]]
    assert contents == ["", "a", "b"]
    error = orjson.loads(events[-2])["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"].startswith("upstream")


async def test_client_disconnect_mid_stream_cancels_the_upstream_request() -> None:
    slow = Scenario(tokens=[f" t{i}" for i in range(200)], delay_s=0.02)
    async with with_openai_fake() as (gw, upstream):
        upstream.queue(slow)
        stream = await gw.openai().chat.completions.create(
            model="openai/gpt-4o-mini", messages=user("hello"), stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
        with anyio.fail_after(5):
            await upstream.last.ended.wait()
        assert upstream.last.outcome == "disconnected"
        assert upstream.last.chunks_sent < len(slow.tokens)


async def test_streaming_the_same_connection_twice_works_after_a_disconnect() -> None:
    """The gateway stays usable after a hang-up (no leaked stream or task)."""
    async with gateway(demo_token_delay_ms=20) as gw, gw.http() as client:
        async with client.stream(
            "POST",
            "/api/v1/chat/completions",
            json={"model": "demo/lorem", "messages": user("x"), "stream": True},
        ) as response:
            async for _ in response.aiter_bytes():
                break
        after = await client.post(
            "/api/v1/chat/completions", json={"model": "demo/echo", "messages": user("ok")}
        )
    assert after.json()["choices"][0]["message"]["content"] == "ok"


async def test_non_streaming_through_the_openai_adapter() -> None:
    async with with_openai_fake() as (gw, _):
        completion = await gw.openai().chat.completions.create(
            model="openai/gpt-4o-mini", messages=user("hello")
        )
    assert completion.choices[0].message.content == "Hello, world!"
    assert completion.model == "openai/gpt-4o-mini"
