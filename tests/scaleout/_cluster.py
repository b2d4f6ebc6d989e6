"""Two (or more) real ``chat-gateway serve`` processes sharing one real Redis.

The shared harness of the scale-out tests (tests/scaleout/). It starts:

- a fake OpenAI upstream **in the test's own event loop** (``cluster.upstream`` is
  the :class:`~tests.fakes.FakeUpstream`: queue scenarios, count requests, see
  when the gateway closed a connection);
- gateway processes ``a`` and ``b`` (``cluster.a``, ``cluster.b``), each the real
  command on its own free loopback port, with ``GATEWAY_SESSIONS_BACKEND=redis``,
  ``GATEWAY_REDIS_URL`` of the given :class:`~tests.redis_server.RedisServer` and a
  key prefix of this cluster's own (so clusters can share one redis-server).

Usage::

    async with cluster(redis_server) as c:
        client = await c.a.open()                  # a ws Client, session.created read
        rid = await client.create("hi")
        await c.b.wait_ready()
        await c.a.kill()                           # SIGKILL
        code = await c.b.stop()                    # SIGTERM, graceful drain; exit code

API (kept small on purpose):

- ``cluster(redis, *, names=("a", "b"), env=None, upstream=None)``: the context
  manager; ``env`` adds/overrides ``GATEWAY_*`` variables for every instance.
- :class:`Cluster`: ``redis``, ``upstream``, ``prefix`` (the Redis key prefix),
  ``instances`` (by name), ``a``/``b``, ``model`` (a model routed to the fake).
- ``key_changes(redis, key)``: keyspace notifications of one Redis key, to await a
  condition on state another process keeps there (re-check after each change).
- :class:`Instance`: ``name``, ``port``, ``base`` (``http://127.0.0.1:N``), ``ws_url``,
  ``logs`` (every JSON log record so far), ``returncode``; ``start()``,
  ``wait_ready()``, ``stop()`` (SIGTERM, returns the exit code), ``kill()`` (SIGKILL),
  ``wait_log(event, where=...)``, ``http()`` (an ``httpx.AsyncClient`` on ``base``),
  ``open()``/``connect()`` (WebSocket clients from tests/gateway/ws/_support.py).

Every wait is bounded; start-up is bounded by ``START_S`` (a loaded 2-core machine
takes a few seconds to import the gateway).
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import orjson
import redis.asyncio as aioredis
from anyio.abc import Process, TaskGroup
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.fakes import FakeUpstream, serve
from tests.gateway.test_cli import COMMAND, clean_env
from tests.gateway.ws._support import PROTOCOL, Client
from tests.redis_server import RedisServer, free_port

START_S = 30.0
STOP_S = 20.0
MODEL = "openai/gpt-4o-mini"
_clusters = itertools.count()

LogRecord = dict[str, Any]


@dataclass
class Instance:
    """One ``chat-gateway serve`` process (restartable on the same port)."""

    name: str
    port: int
    env: dict[str, str]
    _tg: TaskGroup
    logs: list[LogRecord] = field(default_factory=list)
    process: Process | None = None
    _logged: anyio.Event = field(default_factory=anyio.Event)
    _exited: anyio.Event = field(default_factory=anyio.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    # --- lifetime ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the process (again, on the same port) and wait until it is ready."""
        assert self.returncode is not None or self.process is None, f"{self.name} runs"
        self._exited = anyio.Event()
        self.process = await anyio.open_process(
            [*COMMAND, "serve", "--port", str(self.port)],
            env=clean_env(**self.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._tg.start_soon(self._read_logs, self.process)
        await self.wait_ready()

    async def wait_ready(self, within: float = START_S) -> None:
        """Until the process logs ``gateway.listening`` and ``/health/ready`` says ready
        with Redis available."""
        with anyio.fail_after(within):
            await self.wait_log("gateway.listening", since=self._started_at())
            async with self.http() as client:
                ready = await client.get("/health/ready")
        body = ready.json()
        assert ready.status_code == 200, body
        assert body["sessions_backend"] == {"kind": "redis", "available": True}, body

    async def stop(self, within: float = STOP_S) -> int:
        """SIGTERM (graceful drain); the exit code."""
        return await self._signal(signal.SIGTERM, within)

    async def kill(self, within: float = STOP_S) -> int:
        """SIGKILL: the process dies on the spot (its Redis lease is left to expire)."""
        return await self._signal(signal.SIGKILL, within)

    async def _signal(self, sig: signal.Signals, within: float) -> int:
        process = self.process
        assert process is not None
        if process.returncode is None:
            process.send_signal(sig)
        with anyio.fail_after(within):
            code = await process.wait()
            await self._exited.wait()  # every log line read
        return code

    # --- observing ---------------------------------------------------------------------

    async def wait_log(
        self,
        event: str,
        where: Callable[[LogRecord], bool] | None = None,
        *,
        since: int = 0,
        within: float = START_S,
    ) -> LogRecord:
        """The first log record (from index ``since``) whose ``event`` is ``event``."""
        with anyio.fail_after(within):
            index = since
            while True:
                while index < len(self.logs):
                    record = self.logs[index]
                    index += 1
                    if record.get("event") == event and (where is None or where(record)):
                        return record
                if self._exited.is_set():
                    raise AssertionError(f"{self.name} exited before logging {event!r}")
                await self._logged.wait()

    def _started_at(self) -> int:
        # Records of an earlier run of this instance do not count for this one.
        for index in range(len(self.logs) - 1, -1, -1):
            if self.logs[index].get("event") == "_cluster.started":
                return index
        return 0

    async def _read_logs(self, process: Process) -> None:
        # Always drained: a full stderr pipe would block the gateway mid-log.
        self._append({"event": "_cluster.started"})
        assert process.stderr is not None
        buffer = b""
        try:
            async for chunk in process.stderr:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._append(_parse(line))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            if buffer:
                self._append(_parse(buffer))
            self._exited.set()
            self._wake()

    def _append(self, record: LogRecord) -> None:
        self.logs.append(record)
        self._wake()

    def _wake(self) -> None:
        self._logged.set()
        self._logged = anyio.Event()

    # --- clients -------------------------------------------------------------------------

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 10.0)
        return httpx.AsyncClient(base_url=self.base, **kwargs)

    @contextlib.asynccontextmanager
    async def connect(self, **kwargs: Any) -> AsyncIterator[Client]:
        """A WebSocket client (nothing read yet), closed on exit."""
        kwargs.setdefault("max_queue", None)
        kwargs.setdefault("subprotocols", [PROTOCOL])
        async with connect(self.ws_url, **kwargs) as ws:
            yield Client(ws)

    async def open(self, **kwargs: Any) -> Client:
        """A WebSocket client whose ``session.created`` has been read (close it yourself)."""
        kwargs.setdefault("max_queue", None)
        protocols = [Subprotocol(p) for p in kwargs.pop("subprotocols", [PROTOCOL])]
        client = Client(await connect(self.ws_url, subprotocols=protocols, **kwargs))
        await client.next("session.created", within=10)
        return client


@contextlib.asynccontextmanager
async def key_changes(
    redis: RedisServer, key: str, *, recheck_s: float = 0.5
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Redis keyspace notifications for ``key``: yields ``changed()``, which returns
    after the next command that touched it, or after ``recheck_s`` at the latest
    (a notification racing the subscription is not waited for forever). Subscribe
    before acting, then re-check what you wait for after each ``changed()`` and
    bound the whole wait with ``anyio.fail_after``."""
    client = aioredis.from_url(redis.url)
    async with client, client.pubsub() as pubsub:
        await client.config_set("notify-keyspace-events", "KA")
        await pubsub.subscribe(f"__keyspace@0__:{key}")

        async def changed() -> None:
            await pubsub.get_message(ignore_subscribe_messages=True, timeout=recheck_s)

        yield changed


def _parse(line: bytes) -> LogRecord:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {"event": "_cluster.raw", "line": line.decode(errors="replace")}
    return record if isinstance(record, dict) else {"event": "_cluster.raw", "line": str(record)}


@dataclass
class Cluster:
    redis: RedisServer
    upstream: FakeUpstream
    prefix: str
    instances: dict[str, Instance]
    model: str = MODEL

    @property
    def a(self) -> Instance:
        return self.instances["a"]

    @property
    def b(self) -> Instance:
        return self.instances["b"]


@contextlib.asynccontextmanager
async def cluster(
    redis: RedisServer,
    *,
    names: tuple[str, ...] = ("a", "b"),
    env: dict[str, str] | None = None,
    upstream: FakeUpstream | None = None,
) -> AsyncIterator[Cluster]:
    """Start the fake upstream and every instance (concurrently); stop them on exit
    (SIGKILL whatever still runs: a test that cares stops them itself)."""
    from tests.fakes.openai import create_app as create_fake

    upstream = upstream or FakeUpstream()
    prefix = f"cl{next(_clusters)}-{free_port()}:"
    async with serve(create_fake(upstream)) as fake_base, anyio.create_task_group() as tg:
        common = {
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_LOG_LEVEL": "info",
            "GATEWAY_SESSIONS_BACKEND": "redis",
            "GATEWAY_REDIS_URL": redis.url,
            "GATEWAY_REDIS_KEY_PREFIX": prefix,
            "GATEWAY_REDIS_OWNER_LEASE_MS": "1000",
            "GATEWAY_OPENAI_BASE_URL": f"{fake_base}/v1",
            "OPENAI_API_KEY": "sk-test-cluster",
            "GATEWAY_DEFAULT_MODEL": MODEL,
            "GATEWAY_WS_DEFAULT_AGENT": "",
            "GATEWAY_DRAIN_TIMEOUT_S": "3",
            **(env or {}),
        }
        instances = {name: Instance(name, free_port(), dict(common), tg) for name in names}
        try:
            async with anyio.create_task_group() as starting:
                for instance in instances.values():
                    starting.start_soon(instance.start)
            yield Cluster(redis, upstream, prefix, instances)
        finally:
            with anyio.CancelScope(shield=True):
                for instance in instances.values():
                    if instance.returncode is None and instance.process is not None:
                        await instance.kill()
                    if instance.process is not None:
                        await instance.process.aclose()
            tg.cancel_scope.cancel()
