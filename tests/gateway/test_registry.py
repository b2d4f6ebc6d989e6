"""ProviderRegistry: which providers exist, lazy creation, reuse and shutdown."""

from __future__ import annotations

import pytest

from gateway.errors import ProviderNotFound
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatMessage, ChatRequest, Finish
from gateway.settings import load_settings
from tests.fakes import FakeUpstream, serve
from tests.fakes.ollama import create_app

pytestmark = pytest.mark.anyio


def test_demo_is_always_configured_and_others_need_settings() -> None:
    registry = ProviderRegistry(load_settings(openai_api_key=None, anthropic_api_key=None))
    assert registry.known == ["openai", "anthropic", "ollama", "demo"]
    assert registry.configured == ["demo"]
    assert registry.is_configured("demo")
    assert not registry.is_configured("ollama")
    assert not registry.is_configured("nope")


def test_providers_are_configured_by_key_or_base_url() -> None:
    registry = ProviderRegistry(
        load_settings(
            openai_api_key="sk-test",
            anthropic_base_url="http://127.0.0.1:1",
            ollama_base_url="http://127.0.0.1:2",
        )
    )
    assert registry.configured == ["openai", "anthropic", "ollama", "demo"]


@pytest.mark.parametrize("name", ["ollama", "openai", "anthropic", "nope"])
def test_get_unconfigured_provider_raises(name: str) -> None:
    registry = ProviderRegistry(load_settings(openai_api_key=None, anthropic_api_key=None))
    with pytest.raises(ProviderNotFound) as info:
        registry.get(name)
    assert info.value.param == "model"


async def test_instances_are_lazy_and_reused() -> None:
    registry = ProviderRegistry(load_settings(demo_token_delay_ms=0))
    assert registry._instances == {}
    demo = registry.get("demo")
    assert registry.get("demo") is demo
    assert demo.name == "demo"
    await registry.aclose()


async def test_aclose_closes_created_providers() -> None:
    upstream = FakeUpstream()
    async with serve(create_app(upstream)) as base:
        registry = ProviderRegistry(load_settings(ollama_base_url=base, demo_token_delay_ms=0))
        ollama = registry.get("ollama")
        request = ChatRequest("llama3.2", (ChatMessage("user", "hi"),))
        async with ollama.stream(request) as events:
            last = [e async for e in events][-1]
        assert isinstance(last, Finish)
        assert last.reason == "stop"
        await registry.aclose()
        # The closed connection pool refuses new work; a fresh get() creates a new instance.
        with pytest.raises(RuntimeError):
            await ollama.list_models()
        again = registry.get("ollama")
        assert again is not ollama
        await again.aclose()
