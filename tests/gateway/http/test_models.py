"""``/api/v1/models``: OpenAI's list format for every configured provider, aliases, agents."""

from __future__ import annotations

import openai
import pytest

from tests.fakes import FakeUpstream, serve
from tests.fakes.openai import create_app as openai_fake_app
from tests.gateway.http._support import closed_port, gateway

pytestmark = pytest.mark.anyio

KEY = "sk-upstream-0123456789abcdef"


async def test_lists_demo_models_clearly_labelled() -> None:
    async with gateway() as gw:
        models = [m async for m in gw.openai().models.list()]
    ids = {m.id for m in models}
    assert {"demo/echo", "demo/lorem", "demo/triage"} <= ids
    demo = [m for m in models if m.id.startswith("demo/")]
    assert all(m.owned_by == "demo" and m.object == "model" for m in demo)
    assert all("demo" in (m.model_extra or {}).get("description", "").lower() for m in demo)
    assert not any(m.id.startswith("openai/") for m in models)  # not configured


async def test_aliases_and_agents_are_listed() -> None:
    agents = {"helper": {"description": "Helps.", "model": "demo/lorem"}}
    async with gateway(aliases={"fast": "demo/echo"}, agents=agents) as gw, gw.http() as client:
        body = (await client.get("/api/v1/models")).json()
    assert body["object"] == "list"
    alias = next(m for m in body["data"] if m["id"] == "fast")
    assert alias["owned_by"] == "alias"
    assert "demo/echo" in alias["description"]
    agents = {a["id"]: a for a in body["agents"]}
    assert agents["helper"] == {
        "id": "helper",
        "object": "agent",
        "description": "Helps.",
        "model": "demo/lorem",
    }
    assert {"assistant", "ticket-triage"} <= agents.keys()  # the shipped ones stay


async def test_includes_a_configured_provider_and_skips_one_that_cannot_list() -> None:
    upstream = FakeUpstream(api_key=KEY)
    async with serve(openai_fake_app(upstream)) as fake:
        async with gateway(openai_base_url=f"{fake}/v1", openai_api_key=KEY) as gw:
            ids = {m.id async for m in gw.openai().models.list()}
        assert {"openai/gpt-4o-mini", "openai/gpt-4o", "demo/echo"} <= ids
        dead = f"http://127.0.0.1:{closed_port()}/v1"
        async with gateway(openai_base_url=dead, openai_api_key=KEY) as gw:
            ids = {m.id async for m in gw.openai().models.list()}
        assert "demo/echo" in ids
        assert not any(i.startswith("openai/") for i in ids)


async def test_one_providers_models() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.get("/api/v1/models/demo")
        unconfigured = await client.get("/api/v1/models/anthropic")
    assert response.status_code == 200
    assert {m["id"] for m in response.json()["data"]} == {
        "demo/echo",
        "demo/lorem",
        "demo/triage",
        "demo/tools",
    }
    assert unconfigured.status_code == 404
    assert unconfigured.json()["error"]["code"] == "provider_not_found"


async def test_retrieve_one_model_with_the_sdk() -> None:
    async with gateway() as gw:
        client = gw.openai()
        model = await client.models.retrieve("demo/echo")
        assert (model.id, model.owned_by) == ("demo/echo", "demo")
        with pytest.raises(openai.NotFoundError) as caught:
            await client.models.retrieve("demo/nothing")
    assert caught.value.code == "model_not_found"


async def test_every_listed_id_and_every_name_a_chat_takes_can_be_retrieved() -> None:
    # OpenAI clients retrieve by the ids they list and by the names they chat with:
    # an alias and an inferred name are models too, not unknown providers.
    upstream = FakeUpstream(api_key=KEY)
    async with serve(openai_fake_app(upstream)) as fake:
        settings = {"openai_base_url": f"{fake}/v1", "openai_api_key": KEY}
        async with gateway(aliases={"fast": "demo/echo"}, **settings) as gw:
            client = gw.openai()
            listed = [m.id async for m in client.models.list()]
            retrieved = [(await client.models.retrieve(i)).id for i in listed]
            bare = await client.models.retrieve("gpt-4o-mini")
            with pytest.raises(openai.NotFoundError) as unknown:
                await client.models.retrieve("nope")
            with pytest.raises(openai.NotFoundError) as absent:
                await client.models.retrieve("gpt-nothing")
    assert "fast" in listed
    assert retrieved == listed
    assert (bare.id, bare.owned_by) == ("gpt-4o-mini", "openai")
    for caught in (unknown, absent):
        assert (caught.value.code, caught.value.body["param"]) == ("model_not_found", "model")  # type: ignore[index]
