"""``GET /api/v1/models``: the OpenAI model list, for every configured provider.

Shape: ``{"object": "list", "data": [...], "agents": [...]}``. ``data`` holds
one entry per provider model, id ``<provider>/<model>`` (what ``model`` in a chat
request accepts), and one per configured alias (``owned_by: "alias"``). Agents are
presets, not models, so they get their own top-level ``agents`` field (OpenAI
clients ignore it): ``{"id", "object": "agent", "description", "model"}``.
Demo models are ``owned_by: "demo"`` with a description that says so.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.errors import ModelNotFound, ProviderNotFound
from gateway.http._access import require_principal
from gateway.http._responses import JSON
from gateway.providers.base import ModelInfo
from gateway.services import Services, services_of

_log = structlog.get_logger("gateway.http.models")


def _model_entry(provider: str, info: ModelInfo, created: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": f"{provider}/{info.id}",
        "object": "model",
        "created": created,
        "owned_by": info.owned_by,
    }
    if info.description:
        entry["description"] = info.description
    return entry


async def _provider_models(services: Services, name: str, created: int) -> list[dict[str, Any]]:
    infos = await services.providers.get(name).list_models()
    return [_model_entry(name, info, created) for info in infos]


async def _all_provider_models(services: Services, created: int) -> list[dict[str, Any]]:
    names = services.providers.configured
    found: dict[str, list[dict[str, Any]]] = {}

    async def collect(name: str) -> None:
        try:
            found[name] = await _provider_models(services, name, created)
        except Exception as exc:  # one provider down must not hide the others
            _log.warning("models.list_failed", provider=name, error=type(exc).__name__)

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(collect, name)
    return [entry for name in names for entry in found.get(name, [])]


def _alias_entries(services: Services, created: int) -> list[dict[str, Any]]:
    entries = []
    for alias, route in services.router.aliases().items():
        target = route.targets[0].qualified
        entries.append(
            {
                "id": alias,
                "object": "model",
                "created": created,
                "owned_by": "alias",
                "description": f"alias of {target}",
            }
        )
    return entries


def _agent_entries(services: Services) -> list[dict[str, Any]]:
    return [
        {
            "id": agent.name,
            "object": "agent",
            "description": agent.description,
            "model": services.orchestrator.model_of(agent),
        }
        for agent in services.orchestrator.agents.values()
    ]


async def list_models(request: Request) -> Response:
    require_principal(request)
    services = services_of(request)
    created = int(time.time())
    data = await _all_provider_models(services, created)
    data.extend(_alias_entries(services, created))
    return JSON({"object": "list", "data": data, "agents": _agent_entries(services)})


async def provider_models_or_model(request: Request) -> Response:
    """``GET /api/v1/models/<name>``: a provider's list, or one model by any name a chat
    request takes (alias, inferred name), so that every id of the listing -- and what
    ``client.models.retrieve("gpt-4o-mini")`` asks for -- can be retrieved."""
    require_principal(request)
    services = services_of(request)
    name: str = request.path_params["provider"]
    created = int(time.time())
    if name not in services.providers.known:
        return JSON(await _named_model(services, name, created))
    if not services.providers.is_configured(name):
        raise ProviderNotFound(f"provider '{name}' is not configured", param="provider")
    data = await _provider_models(services, name, created)
    return JSON({"object": "list", "data": data})


async def _named_model(services: Services, name: str, created: int) -> dict[str, Any]:
    for alias in _alias_entries(services, created):
        if alias["id"] == name:
            return alias
    target = services.router.resolve(name).targets[0]  # ModelNotFound if it names nothing
    for entry in await _provider_models(services, target.provider, created):
        if entry["id"] == target.qualified:
            return {**entry, "id": name}
    raise ModelNotFound(f"model '{name[:120]}' does not exist", param="model")


async def retrieve_model(request: Request) -> Response:
    """``GET /api/v1/models/<provider>/<model>``: what the OpenAI SDK's ``retrieve`` calls."""
    require_principal(request)
    services = services_of(request)
    name: str = request.path_params["provider"]
    model: str = request.path_params["model"]
    if not services.providers.is_configured(name):
        raise ProviderNotFound(f"provider '{name}' is not configured", param="model")
    for entry in await _provider_models(services, name, int(time.time())):
        if entry["id"] == f"{name}/{model}":
            return JSON(entry)
    raise ModelNotFound(f"model '{name}/{model}' does not exist", param="model")


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/models", list_models, methods=["GET"]),
        Route("/api/v1/models/{provider}", provider_models_or_model, methods=["GET"]),
        Route("/api/v1/models/{provider}/{model:path}", retrieve_model, methods=["GET"]),
    ]
