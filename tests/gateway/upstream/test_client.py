"""``LeanBuildClient`` builds the very request httpx2's own client would.

Each case builds a request both ways and compares everything a transport sees:
method, URL, headers (names, values and order), body and timeouts. The SDK cases
capture what the official SDKs hand to the transport through each client.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from gateway.upstream.client import LeanBuildClient

pytestmark = pytest.mark.anyio

_TIMEOUT = httpx2.Timeout(5.0, read=30.0)
_BODY = b'{"model":"gpt-4o-mini","messages":[]}'
# Differs on every request by design (the SDKs' idempotency key).
_PER_REQUEST_HEADERS = {b"idempotency-key"}


def _seen(request: httpx2.Request) -> tuple[Any, ...]:
    headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _PER_REQUEST_HEADERS]
    return (request.method, str(request.url), headers, request.content, request.extensions)


def _both(**config: Any) -> tuple[httpx2.AsyncClient, LeanBuildClient]:
    return httpx2.AsyncClient(timeout=_TIMEOUT, **config), LeanBuildClient(
        timeout=_TIMEOUT, **config
    )


@pytest.mark.parametrize(
    ("config", "url", "kwargs"),
    [
        # The SDKs' shape: a full URL, every header, the body as bytes, a timeout.
        (
            {},
            "https://api.example.com/v1/chat/completions",
            {
                "headers": [("Accept", "application/json"), ("User-Agent", "sdk/1.0")],
                "timeout": httpx2.Timeout(9.0),
            },
        ),
        # Ollama's shape: a path against the client's base_url, no headers given.
        ({"base_url": "http://127.0.0.1:11434"}, "/api/chat", {}),
        ({"base_url": "http://127.0.0.1:11434/prefix"}, "api/chat", {}),
        # Defaults of the client, overridden in another case.
        ({"headers": {"X-Team": "a", "user-agent": "mine"}}, "http://h/p", {"headers": {}}),
        (
            {"headers": {"X-Team": "a"}},
            "http://h/p",
            {"headers": [("x-team", "b"), ("X-Other", "1"), ("x-other", "2")]},
        ),
        # Cases that take httpx2's own path; the result must still be the same.
        ({}, "http://h/p", {"headers": {"Content-Length": "37"}}),
        ({}, "http://h/p", {"headers": {"Host": "elsewhere"}}),
        ({}, "http://h/p", {"params": {"q": "1"}}),
        ({"params": {"api-version": "1"}}, "http://h/p", {}),
        ({}, "http://h/p", {"cookies": {"c": "1"}}),
        ({}, "http://h/p", {"extensions": {"sni_hostname": "x"}}),
        ({}, httpx2.URL("http://h/p"), {}),
    ],
)
async def test_builds_the_request_httpx2_builds(
    config: dict[str, Any], url: Any, kwargs: dict[str, Any]
) -> None:
    plain, lean = _both(**config)
    async with plain, lean:
        for _ in range(2):  # the second time from the URL cache
            expected = plain.build_request("POST", url, content=_BODY, **kwargs)
            assert _seen(lean.build_request("POST", url, content=_BODY, **kwargs)) == _seen(
                expected
            )


@pytest.mark.parametrize(
    "kwargs",
    [{"json": {"a": 1}}, {"data": {"a": "1"}}, {"content": b""}, {"content": "text"}, {}],
)
async def test_other_bodies_are_built_by_httpx2(kwargs: dict[str, Any]) -> None:
    plain, lean = _both()
    async with plain, lean:
        expected = plain.build_request("POST", "http://h/p", **kwargs)
        assert _seen(lean.build_request("POST", "http://h/p", **kwargs)) == _seen(expected)


async def test_a_cookie_in_the_jar_is_sent_as_httpx2_sends_it() -> None:
    plain, lean = _both()
    async with plain, lean:
        for http in (plain, lean):
            http.cookies.set("session", "s1", domain="api.example.com")
        url = "https://api.example.com/v1/chat/completions"
        expected = plain.build_request("POST", url, content=_BODY)
        built = lean.build_request("POST", url, content=_BODY)
        assert built.headers["cookie"] == "session=s1"
        assert _seen(built) == _seen(expected)


async def test_a_new_base_url_is_not_answered_from_the_cache() -> None:
    async with LeanBuildClient(base_url="http://first:1/v1/") as lean:
        assert (
            str(lean.build_request("POST", "chat", content=_BODY).url) == "http://first:1/v1/chat"
        )
        lean.base_url = httpx2.URL("http://second:2/v2/")
        built = lean.build_request("POST", "chat", content=_BODY)
        assert str(built.url) == "http://second:2/v2/chat"
        assert built.headers["host"] == "second:2"


class _Capture(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        self.requests.append(request)
        return httpx2.Response(200, json={}, request=request)


async def _through_openai(http: httpx2.AsyncClient) -> None:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://up/v1", http_client=http)
    await client.post("/chat/completions", cast_to=httpx2.Response, content=_BODY, stream=True)


async def _through_anthropic(http: httpx2.AsyncClient) -> None:
    client = anthropic.AsyncAnthropic(api_key="sk-ant", base_url="http://up", http_client=http)
    await client.post("/v1/messages", cast_to=httpx2.Response, body={"a": 1}, stream=True)


@pytest.mark.parametrize("send", [_through_openai, _through_anthropic])
async def test_the_sdks_send_the_same_request_through_either_client(send: Any) -> None:
    captured = []
    for make in (httpx2.AsyncClient, LeanBuildClient):
        transport = _Capture()
        async with make(transport=transport, timeout=_TIMEOUT) as http:
            await send(http)
        [request] = transport.requests
        captured.append(_seen(request))
    assert captured[0] == captured[1]
    assert captured[1][2][0] == (b"Host", b"up")  # and it is not a trivial comparison
