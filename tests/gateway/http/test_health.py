"""Health endpoints: liveness, readiness (drain-aware), provider reachability."""

from __future__ import annotations

import pytest

from tests.fakes import FakeUpstream, serve
from tests.fakes.openai import create_app as openai_fake_app
from tests.gateway.http._support import closed_port, gateway

pytestmark = pytest.mark.anyio

KEY = "sk-upstream-secret-0123456789"


async def test_health_and_liveness() -> None:
    async with gateway() as gw, gw.http() as client:
        health = await client.get("/health")
        live = await client.get("/health/live")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["service"]) == ("ok", "chat-gateway")
    assert body["version"]
    assert live.status_code == 200


async def test_ready_turns_503_when_draining() -> None:
    async with gateway() as gw, gw.http() as client:
        before = await client.get("/health/ready")
        gw.services.lifecycle.start_drain()
        after = await client.get("/health/ready")
        still_live = await client.get("/health/live")
    memory = {"kind": "memory", "available": True}
    assert (before.status_code, before.json()) == (
        200,
        {"status": "ready", "sessions_backend": memory},
    )
    assert (after.status_code, after.json()) == (
        503,
        {"status": "draining", "sessions_backend": memory},
    )
    assert still_live.status_code == 200


async def test_a_provider_that_is_down_is_reported_but_does_not_fail_readiness() -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    async with gateway(openai_base_url=dead, openai_api_key=KEY) as gw, gw.http() as client:
        response = await client.get("/health/providers")
        ready = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    openai_status = body["providers"]["openai"]
    assert openai_status["configured"] is True
    assert openai_status["reachable"] is False
    assert openai_status["last_error"]
    assert KEY not in response.text
    assert openai_status["checked_at"]
    demo = body["providers"]["demo"]
    assert (demo["configured"], demo["reachable"]) == (True, True)
    assert demo["latency_ms"] is not None
    anthropic = body["providers"]["anthropic"]
    assert (anthropic["configured"], anthropic["reachable"]) == (False, None)
    assert ready.status_code == 200


@pytest.mark.parametrize(("ttl_s", "probes"), [(60.0, 1), (0.0, 3)])
async def test_probe_results_are_cached_for_the_ttl(ttl_s: float, probes: int) -> None:
    upstream = FakeUpstream(api_key=KEY)
    async with (
        serve(openai_fake_app(upstream)) as fake,
        gateway(openai_base_url=f"{fake}/v1", openai_api_key=KEY, health_probe_ttl_s=ttl_s) as gw,
        gw.http() as client,
    ):
        for _ in range(3):
            body = (await client.get("/health/providers")).json()
            assert body["status"] == "ok"
            assert body["providers"]["openai"]["reachable"] is True
    assert len(upstream.requests) == probes
    assert all(r.path == "/v1/models" for r in upstream.requests)


async def test_health_is_open_when_client_keys_are_required() -> None:
    async with gateway(client_keys="k-0123456789") as gw, gw.http() as client:
        statuses = [(await client.get(p)).status_code for p in ("/health", "/health/ready")]
        statuses.append((await client.get("/health/providers")).status_code)
    assert statuses == [200, 200, 200]
