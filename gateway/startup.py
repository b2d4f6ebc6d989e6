"""Start-up checks and the start-up report.

Misconfigurations that would otherwise fail on every request (a default model or
alias whose provider is not configured) or pass silently (a misspelt ``GATEWAY_*``
variable) are found here, once, before the server binds: the CLI prints each as one
line naming the setting.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from gateway.errors import ModelNotFound
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatRequest
from gateway.router import Router
from gateway.settings import ENV_PREFIX, ConfigError, Settings, env_names


def check_routing(settings: Settings) -> None:
    """Raise :class:`ConfigError` naming the first setting whose model does not resolve."""
    router = Router(settings, ProviderRegistry(settings))
    named: list[tuple[str, str]] = [("default_model", settings.default_model)]
    named += [(f"aliases.{alias}", alias) for alias in settings.aliases]
    # The model each agent will run on: its demo_model while no real provider is.
    offline = not settings.real_provider_configured
    for name, agent in settings.agents.items():
        model = agent.run_on(offline=offline)
        if model is not None:
            field = "demo_model" if offline and agent.demo_model is not None else "model"
            named.append((f"agents.{name}.{field}", model))
    for setting, model in named:
        try:
            # The provider's own check too: a closed list of models (demo) refuses here.
            router.check(router.resolve(model), ChatRequest(model, ()), streamed=True)
        except ModelNotFound as exc:
            raise ConfigError(f"{setting}: {exc.message}") from None


# Variables of earlier versions, and what replaced them.
_RENAMED = {
    "GATEWAY_DEFAULT_AGENT": "renamed: GATEWAY_WS_DEFAULT_AGENT for the socket,"
    " GATEWAY_HTTP_DEFAULT_AGENT for the HTTP API",
}


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``GATEWAY_*`` variable that names no setting (with a guess)."""
    known = env_names()
    warnings = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name.split("__")[0] in known:
            continue
        guess = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        if name in _RENAMED:
            hint = f" ({_RENAMED[name]})"
        warnings.append(f"unknown environment variable {name} is ignored{hint}")
    return warnings


def report(settings: Settings) -> dict[str, Any]:
    """What the start-up log line says about this configuration (never a secret)."""
    return {
        "providers": ProviderRegistry(settings).configured,
        "default_model": settings.default_model,
        "ws_default_agent": settings.ws_default_agent,
        "http_default_agent": settings.http_default_agent,
        "config": settings.config_source,
    }
