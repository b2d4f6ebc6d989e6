"""Helpers for the UI Message Stream tests: a real gateway, httpx streams read part by part."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import orjson

from tests.gateway.http._support import gateway, settings
from tests.gateway.ws._support import fake_upstream

WAIT_S = 5.0
DONE = "[DONE]"
Part = dict[str, Any]

__all__ = ["DONE", "Parts", "body", "fake_upstream", "gateway", "open_stream", "settings"]


def body(text: str, chat_id: str = "chat-1", **extra: Any) -> dict[str, Any]:
    """What ``DefaultChatTransport`` sends for a first ``sendMessage({text})``."""
    return {
        "id": chat_id,
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}],
        "trigger": "submit-message",
        **extra,
    }


class Parts:
    """The parts of one open UI Message Stream, read on demand (each read bounded)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.seen: list[Part | str] = []

    async def next(self) -> Part | str:
        with anyio.fail_after(WAIT_S):
            async for line in self._lines:
                if not line:
                    continue
                assert line.startswith("data: "), line
                data = line[len("data: ") :]
                item: Part | str = DONE if data == DONE else orjson.loads(data)
                self.seen.append(item)
                return item
        raise EOFError("the stream ended without [DONE]")

    async def until(self, kind: str) -> Part:
        while True:
            item = await self.next()
            if isinstance(item, dict) and item["type"] == kind:
                return item
            assert item != DONE, f"[DONE] before a {kind!r} part"

    async def rest(self) -> list[Part | str]:
        """Everything up to and including ``[DONE]``, then the end of the body."""
        while (await self.next()) != DONE:
            pass
        with anyio.fail_after(WAIT_S):
            leftover = [line async for line in self._lines if line]
        assert leftover == [], leftover
        return self.seen

    @property
    def types(self) -> list[str]:
        return [p if isinstance(p, str) else p["type"] for p in self.seen]

    @property
    def text(self) -> str:
        return "".join(
            p["delta"] for p in self.seen if isinstance(p, dict) and p["type"] == "text-delta"
        )


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> AsyncIterator[Parts]:
    """A streamed request; leaving the block early hangs up (the connection is closed)."""
    async with client.stream(method, url, **kwargs) as response:
        yield Parts(response)
