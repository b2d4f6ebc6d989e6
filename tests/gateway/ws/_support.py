"""Helpers for the WebSocket tests: a real gateway on uvicorn and a real ``websockets`` client.

:class:`Client` keeps every frame it reads; ``next``/``response`` pick frames by
predicate and keep the others for later, so a test can wait for one response
while another interleaves. Every wait is bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings, load_settings
from sessions import SessionManager
from tests.fakes import FakeUpstream, serve
from tests.gateway.http._support import production_options

PROTOCOL = Subprotocol("chat-gateway.v1")
WAIT_S = 3.0
_ids = itertools.count(1)

Frame = dict[str, Any]


def settings(**overrides: Any) -> Settings:
    overrides.setdefault("demo_token_delay_ms", 0)
    return load_settings(**overrides)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def new_request_id() -> str:
    return f"req-{next(_ids)}"


@dataclass
class Gateway:
    url: str  # ws://host:port/api/v1/ws
    base: str
    services: Services

    @property
    def manager(self) -> SessionManager:
        assert self.services.sessions is not None
        return self.services.sessions

    @contextlib.asynccontextmanager
    async def connect(
        self, *, subprotocols: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[Client]:
        protocols = [Subprotocol(p) for p in (subprotocols or [PROTOCOL])]
        kwargs.setdefault("max_queue", None)
        async with connect(self.url, subprotocols=protocols, **kwargs) as ws:
            client = Client(ws)
            yield client

    async def open(self, **kwargs: Any) -> Client:
        """A connected client whose ``session.created`` has been read.

        Unless a test asks otherwise, the client's incoming queue is unbounded: a
        ``websockets`` client whose queue is full pauses reading, so closing a socket
        with unread frames would wait its whole ``close_timeout`` for the server's
        close frame, stuck behind them (the server answered at once).
        """
        protocols = [Subprotocol(p) for p in kwargs.pop("subprotocols", [PROTOCOL])]
        kwargs.setdefault("max_queue", None)
        ws = await connect(self.url, subprotocols=protocols, **kwargs)
        client = Client(ws)
        await client.next("session.created")
        return client


@contextlib.asynccontextmanager
async def gateway(
    config: Settings | None = None,
    *,
    uvicorn: dict[str, Any] | None = None,
    send_buffer: int | None = None,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """A gateway on real uvicorn. ``send_buffer`` pins the kernel send buffer of its
    sockets (no autotuning), so a client that stops reading blocks the server soon."""
    config = config or settings(**overrides)
    app = create_app(config)
    options = {**production_options(config), **(uvicorn or {})}
    async with serve(app, send_buffer=send_buffer, **options) as base:
        yield Gateway(base.replace("http://", "ws://") + "/api/v1/ws", base, app.state.services)


def small_receive_socket(gw: Gateway, receive_buffer: int = 4096) -> socket.socket:
    """A client socket, connected to ``gw``, whose kernel receive buffer stays small."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    host, port = gw.base.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


# Pinned kernel buffers on both ends make a client that stops reading block the
# server's sends soon; otherwise megabytes vanish into socket buffers first.
SMALL_BUFFER = 8192


async def stalled_client(gw: Gateway) -> Client:
    """A client for ``gateway(send_buffer=SMALL_BUFFER)`` that reads only when asked:
    small receive buffer, one queued frame, no compression (repetitive text would
    shrink to nothing)."""
    return await gw.open(sock=small_receive_socket(gw), max_queue=1, compression=None)


def only_outbox(gw: Gateway) -> Any:
    """The outbox of the gateway's one socket (its state is what a test observes)."""
    assert gw.services.sockets is not None
    (connection,) = list(gw.services.sockets)
    return connection.outbox


@contextlib.asynccontextmanager
async def fake_upstream(
    provider: str = "openai", upstream: FakeUpstream | None = None
) -> AsyncIterator[tuple[FakeUpstream, dict[str, Any]]]:
    """A fake provider on loopback, and the settings overrides that point the gateway at it."""
    upstream = upstream or FakeUpstream()
    if provider == "openai":
        from tests.fakes.openai import create_app as create_fake

        async with serve(create_fake(upstream)) as base:
            yield upstream, {"openai_base_url": f"{base}/v1", "openai_api_key": "sk-test"}
    elif provider == "anthropic":
        from tests.fakes.anthropic import create_app as create_fake

        async with serve(create_fake(upstream)) as base:
            yield upstream, {"anthropic_base_url": base, "anthropic_api_key": "sk-ant-test"}
    else:
        from tests.fakes.ollama import create_app as create_fake

        async with serve(create_fake(upstream)) as base:
            yield upstream, {"ollama_base_url": base}


@dataclass
class Collected:
    created: Frame
    deltas: list[Frame]
    done: Frame

    @property
    def text(self) -> str:
        return "".join(d["delta"] for d in self.deltas)

    @property
    def response_id(self) -> str:
        return str(self.created["response_id"])


@dataclass
class Client:
    ws: ClientConnection
    frames: list[Frame] = field(default_factory=list)  # every frame read, in order
    _backlog: list[Frame] = field(default_factory=list)  # read but not yet consumed

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(orjson.dumps({"type": type, **fields}).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def create(self, text: str, request_id: str | None = None, **fields: Any) -> str:
        request_id = request_id or new_request_id()
        await self.send("response.create", request_id=request_id, messages=user(text), **fields)
        return request_id

    async def _read(self) -> Frame:
        raw = await self.ws.recv()
        assert isinstance(raw, str), "the server sends text frames only"
        frame: Frame = orjson.loads(raw)
        self.frames.append(frame)
        return frame

    async def next(
        self,
        type: str | None = None,
        where: Callable[[Frame], bool] | None = None,
        within: float = WAIT_S,
    ) -> Frame:
        """The first unconsumed frame of ``type`` (and matching ``where``)."""

        def matches(frame: Frame) -> bool:
            return (type is None or frame["type"] == type) and (where is None or where(frame))

        for index, frame in enumerate(self._backlog):
            if matches(frame):
                return self._backlog.pop(index)
        with anyio.fail_after(within):
            while True:
                frame = await self._read()
                if matches(frame):
                    return frame
                self._backlog.append(frame)

    async def response(
        self, request_id: str, within: float = WAIT_S, response_id: str | None = None
    ) -> Collected:
        """Every frame of one response, from ``response.created`` to ``response.done``."""
        with anyio.fail_after(within):
            created = await self.next("response.created", lambda f: f["request_id"] == request_id)
            rid = created["response_id"]
            deltas: list[Frame] = []
            while True:
                frame = await self.next(where=lambda f: f.get("response_id") == rid)
                if frame["type"] == "response.output_text.delta":
                    deltas.append(frame)
                elif frame["type"] == "response.done":
                    return Collected(created, deltas, frame)

    async def resume(self, created: Frame, last_seq: int) -> Frame:
        """Send ``response.resume`` for the response ``created`` names; its ``resume.result``."""
        await self.send(
            "response.resume",
            response_id=created["response_id"],
            epoch=created["epoch"],
            last_seq=last_seq,
        )
        return await self.next("resume.result")

    async def frames_of(self, response_id: str, until_done: bool = True) -> list[Frame]:
        out: list[Frame] = []
        while True:
            frame = await self.next(where=lambda f: f.get("response_id") == response_id)
            out.append(frame)
            if until_done and frame["type"] == "response.done":
                return out

    async def closed(self, within: float = WAIT_S) -> int:
        """Read until the server closes; returns the close code it sent."""
        with anyio.fail_after(within):
            try:
                while True:
                    await self._read()
            except ConnectionClosed as exc:
                assert exc.rcvd is not None, "the server closed without a close frame"
                return exc.rcvd.code

    async def aclose(self) -> None:
        await self.ws.close()
