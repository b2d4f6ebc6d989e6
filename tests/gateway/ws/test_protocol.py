"""The sans-I/O protocol with a real session manager, router and demo provider: no sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest

from gateway.agents import Orchestrator
from gateway.auth import Principal
from gateway.providers import ProviderRegistry
from gateway.router import Router
from gateway.ws.outbox import Outbox
from gateway.ws.protocol import SocketProtocol
from sessions import SessionManager
from tests.gateway.ws._support import settings

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def protocol(
    **overrides: Any,
) -> AsyncIterator[tuple[SocketProtocol, Outbox, SessionManager]]:
    config = settings(**overrides)
    providers = ProviderRegistry(config)
    router = Router(config, providers)
    manager = SessionManager(resume_window_s=config.resume_window_ms / 1000)
    outbox = Outbox(config.outbox_max_bytes, config.replay_max_bytes)
    async with manager.running():
        proto = SocketProtocol(
            settings=config,
            manager=manager,
            orchestrator=Orchestrator(config, router),
            router=router,
            principal=Principal("p1"),
            outbox=outbox,
        )
        yield proto, outbox, manager
        proto.detach()
    await providers.aclose()


def drain(outbox: Outbox) -> list[dict[str, Any]]:
    out = []
    for data, cost, credit in outbox.take():
        out.append(orjson.loads(data))
        outbox.sent(cost, credit)
    return out


def create(request_id: str, text: str, **fields: Any) -> str:
    return orjson.dumps(
        {
            "type": "response.create",
            "request_id": request_id,
            "messages": [{"role": "user", "content": text}],
            **fields,
        }
    ).decode()


async def test_create_streams_into_the_outbox() -> None:
    async with protocol() as (proto, outbox, manager):
        proto.start()
        await proto.receive_text(create("q1", "hello there"))
        with anyio.fail_after(1):
            await manager.wait_idle()
        got = drain(outbox)
        assert [f["type"] for f in got] == [
            "session.created",
            "response.created",
            "response.output_text.delta",
            "response.done",
        ]
        assert got[2]["delta"] == "hello there"  # produced in one go: merged before sending
        assert got[3]["status"] == "completed"


async def test_errors_name_the_ids_they_can() -> None:
    async with protocol() as (proto, outbox, _):
        await proto.receive_text(
            '{"type": "response.cancel", "response_id": "nope", "event_id": "e1"}'
        )
        await proto.receive_text(create("q2", "x", model="missing/model"))
        proto.receive_bytes(b"\x00")
        got = [f["error"] for f in drain(outbox)]
        assert [(e["code"], e["response_id"], e["request_id"], e["event_id"]) for e in got] == [
            ("response_not_found", "nope", None, "e1"),
            ("model_not_found", None, "q2", None),
            ("invalid_message", None, None, None),
        ]


async def test_oversize_message_asks_for_1009() -> None:
    async with protocol(max_message_bytes=1024) as (proto, outbox, _):
        await proto.receive_text(create("q1", "x" * 2000))
        assert drain(outbox)[0]["error"]["code"] == "message_too_big"
        assert outbox.closing


async def test_draining_manager_refuses_new_responses() -> None:
    async with protocol() as (proto, outbox, manager):
        await manager.drain(anyio.current_time())
        await proto.receive_text(create("q1", "x"))
        err = drain(outbox)[0]["error"]
        assert (err["code"], err["retryable"], err["request_id"]) == ("server_draining", True, "q1")
