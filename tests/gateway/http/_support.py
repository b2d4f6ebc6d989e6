"""Helpers for the HTTP API tests: a real gateway on a loopback port, and clients for it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from gateway.app import create_app
from gateway.server import server_options
from gateway.services import Services
from gateway.settings import Settings, load_settings
from tests.fakes import serve


@dataclass
class Gateway:
    base: str
    services: Services
    _clients: list[openai.AsyncOpenAI] = field(default_factory=list)

    def openai(self, api_key: str = "unused", **kwargs: Any) -> openai.AsyncOpenAI:
        """An SDK client for the gateway, closed when the gateway context ends."""
        # max_retries=0: a test must see the gateway's first answer, not the SDK's retry.
        kwargs.setdefault("max_retries", 0)
        client = openai.AsyncOpenAI(base_url=f"{self.base}/api/v1", api_key=api_key, **kwargs)
        self._clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=10, **kwargs)


def settings(**overrides: Any) -> Settings:
    overrides.setdefault("demo_token_delay_ms", 0)
    return load_settings(**overrides)


@contextlib.asynccontextmanager
async def gateway(config: Settings | None = None, **overrides: Any) -> AsyncIterator[Gateway]:
    config = config or settings(**overrides)
    app = create_app(config)
    async with serve(app, **production_options(config)) as base:
        gw = Gateway(base, app.state.services)
        try:
            yield gw
        finally:
            await gw.aclose()


def production_options(config: Settings) -> dict[str, Any]:
    """uvicorn as ``build_server`` configures it: the suites test that."""
    return server_options(config)


def closed_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]
