"""``/openapi.json`` validates as OpenAPI 3.1, lists every route of the app (including
ones added later), and its request body schema is the pydantic model the route uses."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route, WebSocketRoute

from gateway.http._chat_request import ChatCompletionBody
from gateway.http.openapi import _path
from tests.gateway.http._support import gateway

pytestmark = pytest.mark.anyio


async def test_the_document_is_valid_openapi_31_and_lists_every_route() -> None:
    async with gateway() as gw, gw.http() as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    # Every route of the running app, whoever added it, is in the document.
    from gateway.app import create_app
    from gateway.settings import load_settings

    routes = create_app(load_settings()).routes
    expected = set()
    for route in routes:
        if isinstance(route, Route):
            expected |= {(_path(route.path), m.lower()) for m in (route.methods or {"GET"})}
        elif isinstance(route, WebSocketRoute):
            expected.add((_path(route.path), "get"))
    expected = {(p, m) for p, m in expected if m != "head"}
    listed = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert expected <= listed, sorted(expected - listed)
    assert ("/api/v1/chat/completions", "post") in listed
    assert ("/openapi.json", "get") in listed


async def test_the_chat_body_schema_is_the_validating_model() -> None:
    async with gateway() as gw, gw.http() as client:
        spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/chat/completions"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    assert name == ChatCompletionBody.__name__
    schema = spec["components"]["schemas"][name]
    model_schema = ChatCompletionBody.model_json_schema(ref_template="#/components/schemas/{model}")
    model_schema.pop("$defs", None)
    assert schema == model_schema
    assert spec["paths"]["/api/v1/models/{provider}/{model}"]["get"]["parameters"]
