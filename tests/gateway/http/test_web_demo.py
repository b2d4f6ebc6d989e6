"""``GET /``: the built web demo page, and an unchanged gateway without a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.http._support import gateway

pytestmark = pytest.mark.anyio


def _build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><script src="./assets/app-1.js"></script>')
    (root / "assets" / "app-1.js").write_text("console.log('demo')")
    return root


async def test_serves_the_built_page_and_its_assets(tmp_path: Path) -> None:
    async with gateway(web_demo_dir=_build(tmp_path)) as gw, gw.http() as client:
        page = await client.get("/")
        asset = await client.get("/assets/app-1.js")
        missing = await client.get("/assets/nope.js")
        api = await client.get("/api/v1/nope")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "app-1.js" in page.text
    assert asset.status_code == 200
    assert asset.text == "console.log('demo')"
    assert missing.status_code == 404
    # Only / and /assets belong to the page: other paths keep the API's JSON errors.
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"


async def test_starts_without_a_build(tmp_path: Path) -> None:
    async with gateway(web_demo_dir=tmp_path / "absent") as gw, gw.http() as client:
        page = await client.get("/")
        health = await client.get("/health")
    assert page.status_code == 404
    assert page.json()["error"]["code"] == "not_found"
    assert health.status_code == 200
