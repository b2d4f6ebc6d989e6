"""Provider adapters and the registry that creates them lazily.

Adding a provider means adding one module with a ``create(settings)`` function
and one line in :data:`_FACTORIES`; nothing else in the gateway switches on
provider names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import anyio

from gateway.errors import ProviderNotFound
from gateway.providers.base import (
    ChatMessage,
    ChatOptions,
    ChatParams,
    ChatRequest,
    Completion,
    Finish,
    FinishReason,
    ModelInfo,
    Provider,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from gateway.settings import Settings

__all__ = [
    "ChatMessage",
    "ChatOptions",
    "ChatParams",
    "ChatRequest",
    "Completion",
    "Finish",
    "FinishReason",
    "ModelInfo",
    "Provider",
    "ProviderRegistry",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallStart",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class _Factory:
    module: str  # imported on first use: the SDKs are slow to import
    is_configured: Callable[[Settings], bool]


_FACTORIES: dict[str, _Factory] = {
    "openai": _Factory("gateway.providers.openai", lambda s: s.openai_configured),
    "anthropic": _Factory("gateway.providers.anthropic", lambda s: s.anthropic_configured),
    "ollama": _Factory("gateway.providers.ollama", lambda s: s.ollama_configured),
    "demo": _Factory("gateway.providers.demo", lambda s: True),
}


class ProviderRegistry:
    """Creates each configured provider on first use and closes them all at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._instances: dict[str, Provider] = {}

    @property
    def known(self) -> list[str]:
        return list(_FACTORIES)

    @property
    def configured(self) -> list[str]:
        return [name for name, f in _FACTORIES.items() if f.is_configured(self._settings)]

    def is_configured(self, name: str) -> bool:
        factory = _FACTORIES.get(name)
        return factory is not None and factory.is_configured(self._settings)

    def get(self, name: str) -> Provider:
        """The provider called ``name``; raises ProviderNotFound if unknown or unconfigured."""
        provider = self._instances.get(name)
        if provider is not None:
            return provider
        if not self.is_configured(name):
            raise ProviderNotFound(f"provider '{name}' is not configured", param="model")
        module = importlib.import_module(_FACTORIES[name].module)
        provider = cast(Provider, module.create(self._settings))
        self._instances[name] = provider
        return provider

    def warm(self) -> None:
        """Create every configured provider now: SDK imports and connection pools happen
        at start-up (where a broken configuration fails fast) instead of on a first request.
        """
        for name in self.configured:
            self.get(name)

    async def aclose(self) -> None:
        instances, self._instances = list(self._instances.values()), {}
        with anyio.CancelScope(shield=True):
            for provider in instances:
                await provider.aclose()
