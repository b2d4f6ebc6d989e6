"""Model name -> provider target(s); retries and fallback before the first token.

INTERFACE STUB written by the lead: the router helper implements it. Names and
signatures here are what the HTTP and WebSocket layers code against.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatRequest, Completion, StreamEvent
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class Target:
    provider: str  # registry name: openai | anthropic | ollama | demo
    model: str  # the provider's own model name

    @property
    def qualified(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Route:
    requested_model: str
    targets: tuple[Target, ...]  # primary first, then the fallback chain


class RoutedStream:
    """Events of the target that answered; ``target`` is final once iteration starts."""

    target: Target

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError


class Router:
    def __init__(self, settings: Settings, providers: ProviderRegistry) -> None:
        self._settings = settings
        self._providers = providers

    def resolve(self, model: str) -> Route:
        """Raises ModelNotFound. ``provider/model`` prefix, alias, inference by name."""
        raise NotImplementedError

    def stream(self, route: Route, request: ChatRequest) -> AbstractAsyncContextManager[RoutedStream]:
        """``request.model`` is replaced per target. Retries / falls back only before
        the first event has been yielded to the caller."""
        raise NotImplementedError

    async def complete(self, route: Route, request: ChatRequest) -> tuple[Target, Completion]:
        raise NotImplementedError
