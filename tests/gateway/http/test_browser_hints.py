"""What a browser page (and its developer) is told: refused origins name
GATEWAY_ALLOWED_ORIGINS, a plain GET of the socket route is 426 with a hint, and every
response carries ``x-request-id``."""

from __future__ import annotations

import orjson
import pytest
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus

from tests.fakes import Scenario
from tests.gateway.http._support import gateway, user
from tests.gateway.http.test_chat import with_openai_fake
from tests.gateway.ws._support import gateway as ws_gateway

pytestmark = pytest.mark.anyio

PAGE = "https://app.example"
PREFLIGHT = {"origin": PAGE, "access-control-request-method": "POST"}


@pytest.mark.parametrize("allowed", [[], ["https://other.example"]])
async def test_a_refused_preflight_names_the_setting(allowed: list[str]) -> None:
    async with gateway(allowed_origins=allowed) as gw, gw.http() as client:
        with capture_logs() as logs:
            response = await client.options("/api/v1/chat/completions", headers=PREFLIGHT)
    assert response.status_code == 403
    error = response.json()["error"]
    assert "GATEWAY_ALLOWED_ORIGINS" in error["message"] and PAGE in error["message"]
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["x-request-id"]
    refused = [e for e in logs if e["event"] == "cors.origin_refused"]
    assert refused == [
        {
            "event": "cors.origin_refused",
            "origin": PAGE,
            "setting": "GATEWAY_ALLOWED_ORIGINS",
            "log_level": "warning",
        }
    ]


async def test_an_allowed_preflight_is_answered() -> None:
    async with gateway(allowed_origins=[PAGE]) as gw, gw.http() as client:
        response = await client.options("/api/v1/chat/completions", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PAGE


async def test_a_refused_socket_origin_names_the_setting() -> None:
    async with ws_gateway(allowed_origins=[]) as gw:
        with capture_logs() as logs, pytest.raises(InvalidStatus) as info:
            async with gw.connect(origin=PAGE):  # type: ignore[arg-type]
                pass
    response = info.value.response
    assert response.status_code == 403
    message = orjson.loads(response.body)["error"]["message"]
    assert "GATEWAY_ALLOWED_ORIGINS" in message and PAGE in message
    assert response.headers["x-request-id"]
    assert any(
        e["event"] == "ws.origin_refused" and e["setting"] == "GATEWAY_ALLOWED_ORIGINS"
        for e in logs
    )


async def test_a_plain_get_of_the_socket_route_is_426_with_a_hint() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.get("/api/v1/ws")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    error = response.json()["error"]
    assert error["code"] == "upgrade_required"
    assert "WebSocket" in error["message"] and "chat-gateway.v1" in error["message"]
    assert response.headers["x-request-id"]


async def test_every_response_carries_a_request_id() -> None:
    async with with_openai_fake() as (gw, upstream), gw.http() as client:
        upstream.queue(Scenario(status=500))
        upstream.queue(Scenario(status=503))
        responses = {
            "health": await client.get("/health"),
            "404": await client.get("/no/such/route"),
            "405": await client.delete("/api/v1/chat/completions"),
            "400": await client.post("/api/v1/chat/completions", content=b"{"),
            "422": await client.post("/api/v1/chat/completions", json={"messages": []}),
            "model 404": await client.post(
                "/api/v1/chat/completions", json={"model": "nope", "messages": user("x")}
            ),
            "upstream 500": await client.post(
                "/api/v1/chat/completions",
                json={"model": "openai/gpt-4o-mini", "messages": user("x")},
            ),
            "upstream 503": await client.post(
                "/api/v1/chat/completions",
                json={"model": "openai/gpt-4o-mini", "messages": user("x"), "stream": True},
            ),
            "ok": await client.post(
                "/api/v1/chat/completions", json={"model": "demo/echo", "messages": user("x")}
            ),
        }
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses["upstream 500"] >= 500 and statuses["upstream 503"] == 503
    ids = {name: r.headers.get("x-request-id") for name, r in responses.items()}
    assert all(ids.values()), ids
    assert len(set(ids.values())) == len(ids)  # one per response
    # A chat request's errors carry the id its log summary has (chatcmpl-...).
    for name in ("model 404", "upstream 500", "upstream 503", "ok"):
        assert ids[name].startswith("chatcmpl-"), (name, ids[name])
    assert responses["ok"].json()["id"] == ids["ok"]


async def test_an_unexpected_error_still_carries_a_request_id() -> None:
    async with gateway() as gw, gw.http() as client:

        def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("boom")

        gw.services.orchestrator.prepare = broken  # type: ignore[method-assign]
        response = await client.post(
            "/api/v1/chat/completions", json={"model": "demo/echo", "messages": user("x")}
        )
    assert response.status_code == 500
    assert response.headers["x-request-id"].startswith("chatcmpl-")
