"""``POST /admin/drain``: exists only with an admin token, and requires it."""

from __future__ import annotations

import pytest

from tests.gateway.http._support import gateway

pytestmark = pytest.mark.anyio

ADMIN = "admin-token-0123456789"


async def test_drain_endpoint_does_not_exist_without_an_admin_token() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.post("/admin/drain", headers={"authorization": f"Bearer {ADMIN}"})
        ready = await client.get("/health/ready")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert ready.status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {ADMIN}"])
async def test_drain_requires_the_admin_token(header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    async with gateway(admin_token=ADMIN) as gw, gw.http() as client:
        response = await client.post("/admin/drain", headers=headers)
        ready = await client.get("/health/ready")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert ADMIN not in response.text
    assert ready.status_code == 200
    assert not gw.services.lifecycle.draining


async def test_client_keys_are_not_admin_tokens() -> None:
    async with (
        gateway(admin_token=ADMIN, client_keys="client-0123456789") as gw,
        gw.http() as client,
    ):
        response = await client.post(
            "/admin/drain", headers={"authorization": "Bearer client-0123456789"}
        )
    assert response.status_code == 401


async def test_drain_starts_draining() -> None:
    async with gateway(admin_token=ADMIN, drain_timeout_s=12) as gw, gw.http() as client:
        response = await client.post("/admin/drain", headers={"authorization": f"Bearer {ADMIN}"})
        ready = await client.get("/health/ready")
        again = await client.post("/admin/drain", headers={"authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "draining"
    assert 0 < body["deadline_ms"] <= 12_000
    assert (ready.status_code, ready.json()["status"]) == (503, "draining")
    assert gw.services.lifecycle.draining
    assert again.status_code == 202  # idempotent
