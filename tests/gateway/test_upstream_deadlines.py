"""A trickling upstream is cut off by the stream's own wall-clock deadlines.

The fake upstream is a raw socket server: it answers with the provider's real
wire format up to the first token, then sends one byte every
:data:`TRICKLE_S` that never completes an event. Each byte would reset a read
timeout; the idle deadline counts between *events* and the total deadline
holds on its own, so both must end the answer with ``upstream_timeout`` and
close the upstream connection, which the fake sees.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import orjson
import pytest

from gateway.errors import UpstreamTimeout
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatMessage, ChatRequest, TextDelta, UsageSoFar
from gateway.router import Router
from gateway.settings import load_settings
from tests.gateway.http import _support as http_support
from tests.gateway.upstream._raw import Peer, RawServer, raw_server
from tests.gateway.ws import _support as ws_support

pytestmark = pytest.mark.anyio

TRICKLE_S = 0.1
# Far above every deadline used here: on today's main the answers never end.
HANG_S = 15.0

_OPENAI_FIRST = (
    b"data: "
    + orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
            ],
        }
    )
    + b"\n\n"
)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_ANTHROPIC_FIRST = (
    _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        },
    )
    + _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    + _sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    )
)

_OLLAMA_FIRST = (
    orjson.dumps(
        {
            "model": "llama3:8b",
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "Hi"},
            "done": False,
        }
    )
    + b"\n"
)


@dataclass(frozen=True)
class Wire:
    """One provider's first token, the bytes it then trickles, and how to point at it."""

    provider: str
    model: str
    content_type: bytes
    first: bytes
    trickle: bytes  # the start of an event that never completes

    def settings(self, base: str) -> dict[str, Any]:
        if self.provider == "openai":
            return {"openai_base_url": f"{base}/v1", "openai_api_key": "sk-test"}
        if self.provider == "anthropic":
            return {"anthropic_base_url": base, "anthropic_api_key": "sk-ant-test"}
        return {"ollama_base_url": base}


WIRES = [
    Wire("openai", "gpt-4o-mini", b"text/event-stream", _OPENAI_FIRST, b'data: {"choices'),
    Wire("anthropic", "claude-x", b"text/event-stream", _ANTHROPIC_FIRST, b"event: content"),
    Wire("ollama", "llama3:8b", b"application/x-ndjson", _OLLAMA_FIRST, b'{"model": "llama'),
]


@dataclass
class Trickler:
    """The fake's side: whether (and how) the gateway hung up on the trickle."""

    wire: Wire
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    bytes_trickled: int = 0

    async def __call__(self, peer: Peer) -> None:
        if await peer.request() is None:
            return
        head = b"HTTP/1.1 200 OK\r\ncontent-type: " + self.wire.content_type + b"\r\n"
        # No length, no chunking: the body ends when the connection does.
        await peer.send(head + b"connection: close\r\n\r\n" + self.wire.first)
        trickling = asyncio.create_task(self._trickle(peer))
        try:
            if await peer.closed_by_client():
                self.hung_up.set()
        finally:
            trickling.cancel()

    async def _trickle(self, peer: Peer) -> None:
        pending = self.wire.trickle + b"x" * 10_000
        with contextlib.suppress(ConnectionError):
            for index in range(len(pending)):
                await asyncio.sleep(TRICKLE_S)
                await peer.send(pending[index : index + 1])
                self.bytes_trickled += 1


@contextlib.asynccontextmanager
async def trickling(wire: Wire) -> AsyncIterator[tuple[Trickler, RawServer]]:
    script = Trickler(wire)
    async with raw_server(script) as server:
        yield script, server


def _ids(wire: Wire) -> str:
    return wire.provider


LIMITS = {
    "idle": {"between_tokens_s": 0.5, "total_s": 60.0},
    "total": {"between_tokens_s": 60.0, "total_s": 1.0},
}


@pytest.mark.parametrize("transport", ["gateway", "httpx2"])
@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("wire", WIRES, ids=_ids)
async def test_a_trickling_upstream_is_cut_off_by_the_router(
    wire: Wire, limit: str, transport: str
) -> None:
    async with trickling(wire) as (fake, server):
        settings = load_settings(
            timeouts=LIMITS[limit], upstream_transport=transport, **wire.settings(server.url)
        )
        registry = ProviderRegistry(settings)
        router = Router(settings, registry)
        request = ChatRequest(wire.model, (ChatMessage("user", "Hi"),))
        got: list[Any] = []
        try:
            with anyio.fail_after(HANG_S), pytest.raises(UpstreamTimeout) as caught:
                route = router.resolve(f"{wire.provider}/{wire.model}")
                async with router.stream(route, request) as events:
                    async for event in events:
                        got.append(event)
            with anyio.fail_after(HANG_S):
                await fake.hung_up.wait()  # the gateway closed the upstream connection
        finally:
            await registry.aclose()
    # (Anthropic's input tokens, told up front, come before the text.)
    assert [e for e in got if not isinstance(e, UsageSoFar)] == [TextDelta("Hi")]
    assert caught.value.code == "upstream_timeout"
    assert fake.bytes_trickled >= 1  # bytes did arrive after the first token
    assert str(server.url.rsplit(":", 1)[1]) not in caught.value.message


@pytest.mark.parametrize("wire", WIRES, ids=_ids)
async def test_a_trickling_upstream_ends_an_sse_answer_with_upstream_timeout(wire: Wire) -> None:
    async with trickling(wire) as (fake, server):
        config = http_support.settings(timeouts=LIMITS["idle"], **wire.settings(server.url))
        async with http_support.gateway(config) as gw, gw.http() as client:
            body = {
                "model": f"{wire.provider}/{wire.model}",
                "messages": http_support.user("Hi"),
                "stream": True,
            }
            with anyio.fail_after(HANG_S):
                response = await client.post(
                    "/api/v1/chat/completions", json=body, timeout=httpx.Timeout(HANG_S)
                )
                await fake.hung_up.wait()
    assert response.status_code == 200
    events = [
        line.removeprefix("data: ")
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]"  # the in-band error, then the end of the stream
    chunks = [orjson.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == "Hi"
    assert chunks[-1]["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize("wire", WIRES, ids=_ids)
async def test_a_trickling_upstream_ends_a_websocket_answer_failed(wire: Wire) -> None:
    async with trickling(wire) as (fake, server):
        config = ws_support.settings(timeouts=LIMITS["total"], **wire.settings(server.url))
        async with ws_support.gateway(config) as gw:
            client = await gw.open()
            try:
                request_id = await client.create("Hi", model=f"{wire.provider}/{wire.model}")
                collected = await client.response(request_id, within=HANG_S)
                with anyio.fail_after(HANG_S):
                    await fake.hung_up.wait()
            finally:
                await client.aclose()
    assert collected.text == "Hi"
    done = collected.done
    assert done["status"] == "failed"
    assert done["error"]["code"] == "upstream_timeout"
