"""``GET /openapi.json``: the OpenAPI 3.1 document of the HTTP API, built from the app's
own routes and the pydantic models the routes validate with, so it cannot drift.

Every ``Route`` (and the WebSocket route, as its upgrading GET) is listed, whether or
not it is described: a route added later shows up with its endpoint's docstring as
summary. To say more, decorate the endpoint with :func:`describe` (a request body
model, a summary); nothing else needs to change here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from gateway import __version__
from gateway.http._responses import JSON

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__openapi__"
_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
_REF = "#/components/schemas/{model}"

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
                "param": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "code", "param"],
        }
    },
    "required": ["error"],
}


def describe(
    *,
    summary: str | None = None,
    body: type[BaseModel] | None = None,
    responses: dict[str, str] | None = None,
) -> Callable[[F], F]:
    """Attach OpenAPI details to an endpoint (a request body model, a summary, and
    success statuses other than 200 with their descriptions, e.g. ``{"204": ...}``)."""

    def mark(endpoint: F) -> F:
        details = {"summary": summary, "body": body, "responses": responses or {}}
        setattr(endpoint, _ATTRIBUTE, details)
        return endpoint

    return mark


def document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if isinstance(route, Route):
            methods = sorted((route.methods or {"GET"}) - {"HEAD"})
            for method in methods:
                operation = _operation(route, method, schemas)
                paths.setdefault(_path(route.path), {})[method.lower()] = operation
        elif isinstance(route, WebSocketRoute):
            paths.setdefault(_path(route.path), {}).setdefault(
                "get",
                {
                    "summary": "WebSocket session (protocol chat-gateway.v1, docs/protocol.md)",
                    "responses": {"101": {"description": "switching to the WebSocket protocol"}},
                },
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "chat-gateway", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _path(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _operation(route: Route, method: str, schemas: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = getattr(route.endpoint, _ATTRIBUTE, {})
    doc = (route.endpoint.__doc__ or "").strip().splitlines()
    summary = details.get("summary") or (doc[0] if doc else f"{method} {route.path}")
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{method.lower()}_{route.name}",
        "responses": {
            "200": {"description": "success"},
            "default": {
                "description": "an error, in OpenAI's shape",
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
            },
        },
    }
    # A bodyless success (204) documented as such: "default" would promise JSON.
    for status, description in details.get("responses", {}).items():
        operation["responses"][status] = {"description": description}
    params = [m.group(1) for m in _PARAM.finditer(route.path)]
    if params:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in params
        ]
    body: type[BaseModel] | None = details.get("body")
    if body is not None:
        schema = body.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[body.__name__] = schema
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=body.__name__)}}},
        }
    return operation


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of this API."""
    return JSON(document(request.app.routes))


def routes() -> list[BaseRoute]:
    return [Route("/openapi.json", openapi, methods=["GET"])]
