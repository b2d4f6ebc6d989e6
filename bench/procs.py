"""The processes of a benchmark run: fake upstream, gateway, floor server, load drivers.

Each server is its own process on loopback, started and stopped here; the load
drivers are separate processes too (``python -m bench.load_*``) that print one
JSON object on stdout. Nothing here measures anything but readiness.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped]

from bench import _driver

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLIENT_KEY = "bench-client-key"
MODEL = "openai/gpt-4o-mini"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Placement:
    """Which cores the gateway and the load (fake upstream, drivers) may run on.

    ``None`` leaves a process to the scheduler. :func:`isolated` gives the gateway
    a core of its own: on a 2-core machine the fake and the clients otherwise
    compete with it for CPU, and their own queueing shows up as latency the
    gateway "added". The direct baseline runs with the same placement (fake and
    client on the load cores), so both sides of a comparison see the same machine.
    """

    gateway: frozenset[int] | None = None
    load: frozenset[int] | None = None

    def describe(self) -> str:
        if self.gateway is None or self.load is None:
            return "no CPU pinning"
        return (
            f"gateway pinned to core {_cores(self.gateway)}; "
            f"fake upstream and load drivers to core {_cores(self.load)}"
        )


SHARED = Placement()


def isolated() -> Placement:
    """The gateway on the last core, everything else on the others (if there are 2+)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return SHARED
    return Placement(frozenset(cores[-1:]), frozenset(cores[:-1]))


def _cores(cores: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


def _pinned(cores: frozenset[int] | None) -> Any:
    """A ``preexec_fn`` pinning the child (and every thread it starts) to ``cores``."""
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


def raise_fd_limit() -> None:
    """10,000 sockets need more descriptors than the usual soft limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process and its base URL."""

    name: str
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def fake_requests(self, since: int = 0) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/_fake/requests", params={"since": since}, timeout=30)
        reply.raise_for_status()
        listed: list[dict[str, Any]] = reply.json()["requests"]
        return listed

    def last_request_id(self) -> int:
        listed = self.fake_requests()
        return max((r["id"] for r in listed), default=0)

    def wait_quiet(self, since: int, timeout_s: float = 10.0) -> int:
        """Wait until no stream the fake started after ``since`` is still running.

        Returns how many were still running at the deadline (0 when quiet).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            pending = sum(1 for r in self.fake_requests(since) if r["outcome"] == "pending")
            if pending == 0 or time.monotonic() > deadline:
                return pending
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fake_upstream(
    *,
    tokens: int,
    delay_ms: float = 0.0,
    stamp: bool = False,
    lean: bool = False,
    cores: frozenset[int] | None = None,
) -> Iterator[Server]:
    """The fake OpenAI upstream; ``lean``: the asyncio one (``tests/fakes/lean_openai.py``)."""
    command = [PYTHON, "-m", "tests.fakes", "--provider", "openai", "--port", "0"]
    command += ["--tokens", str(tokens), "--delay-ms", str(delay_ms)]
    if stamp:
        command.append("--stamp-tokens")
    if lean:
        command.append("--lean")
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, preexec_fn=_pinned(cores))
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake upstream did not start: {line!r}")
        yield Server("fake", process, line.removeprefix("listening on "))
    finally:
        _stop(process)


def gateway_env(upstream: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "OPENAI_API_KEY": "bench-key",
            "GATEWAY_OPENAI_BASE_URL": f"{upstream}/v1",
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_CLIENT_KEYS": CLIENT_KEY,
            "GATEWAY_MAX_SOCKETS": "20000",
            "GATEWAY_MAX_SOCKETS_PER_KEY": "20000",
            "GATEWAY_MESSAGES_PER_SECOND": "10000",
            "GATEWAY_MESSAGE_BURST": "10000",
            # One socket at c=1 unpaced asks for ~300 answers a second: over the default
            # flood ceiling (200/s), which would close it 1008 mid-run.
            "GATEWAY_FLOOD_MESSAGES_PER_SECOND": "100000",
            "GATEWAY_FLOOD_MESSAGE_BURST": "100000",
            "GATEWAY_IDLE_TIMEOUT_MS": "600000",
        }
    )
    if extra:
        env.update(extra)
    return env


@contextlib.contextmanager
def gateway(
    upstream: str,
    extra: Mapping[str, str] | None = None,
    *,
    cores: frozenset[int] | None = None,
    source: Path | None = None,
) -> Iterator[Server]:
    """The gateway of this checkout; ``source``: the one in that directory instead.

    ``python -m`` puts the working directory first on ``sys.path``, ahead of the
    editable install of this checkout, so the gateway (and ``sessions``) of
    ``source`` is what runs, with this virtualenv's libraries.
    """
    port = free_port()
    command = [PYTHON, "-m", "gateway.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=source or REPO,
        env=gateway_env(upstream, extra),
        stdout=subprocess.DEVNULL,
        preexec_fn=_pinned(cores),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(process, f"{url}/health/ready")
        yield Server("gateway", process, url)
    finally:
        _stop(process)


@contextlib.contextmanager
def redis_server(*, cores: frozenset[int] | None = None) -> Iterator[Server]:
    """A throwaway ``redis-server`` on a free loopback port (never the system one).

    Started the way ``tests/redis_server.py`` starts the tests' one, but without
    persistence: the tests' fsync per write would make the benchmark measure the
    disk, and a session store's events live for a resume window anyway. ``url``
    is the ``redis://`` URL the gateway takes.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--protected-mode", "no"]
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        process = subprocess.Popen(
            [*command, "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_pinned(cores),
        )
        try:
            _wait_redis(process, port)
            yield Server("redis", process, f"redis://127.0.0.1:{port}/0")
        finally:
            _stop(process)


def _wait_redis(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1) as conn,
        ):
            conn.sendall(b"PING\r\n")
            if conn.recv(64).startswith(b"+PONG"):
                return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server on port {port}: not ready after {_START_TIMEOUT_S} s")


def redis_info(url: str, section: str = "stats") -> dict[str, str]:
    """``INFO <section>`` of the Redis at ``url`` as a dict (one short-lived connection)."""
    host, port = url.removeprefix("redis://").split("/", 1)[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"INFO {section}\r\n".encode())
        reply = b""
        # A bulk string: "$<length>\r\n<payload>\r\n".
        while b"\r\n" not in reply or len(reply) < _bulk_end(reply):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    text = reply.split(b"\r\n", 1)[1].decode()
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("#"):
            fields[name] = value
    return fields


def _bulk_end(reply: bytes) -> int:
    head, _, _ = reply.partition(b"\r\n")
    return len(head) + 2 + int(head[1:]) + 2


@contextlib.contextmanager
def floor_server() -> Iterator[Server]:
    """The bare Starlette/uvicorn WebSocket server (:mod:`bench.floor_ws`)."""
    port = free_port()
    command = [PYTHON, "-m", "bench.floor_ws", "--port", str(port), "--key", CLIENT_KEY]
    process = subprocess.Popen(command, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(process, f"{url}/ready")
        yield Server("floor", process, url)
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}: not ready after {_START_TIMEOUT_S} s")


def run_driver(
    module: str,
    args: Mapping[str, Any],
    timeout_s: float = 600,
    *,
    cores: frozenset[int] | None = None,
) -> dict[str, Any]:
    """Run ``python -m bench.<module>`` with ``args`` as JSON; returns its JSON result."""
    command = [PYTHON, "-m", f"bench.{module}", orjson.dumps(dict(args)).decode()]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        path = Path(tmp) / "result.json"
        done = subprocess.run(
            command,
            cwd=REPO,
            env={**os.environ, _driver.RESULT_PATH_ENV: str(path)},
            capture_output=True,
            timeout=timeout_s,
            check=False,
            preexec_fn=_pinned(cores),
        )
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"bench.{module} failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}"
            )
        result: dict[str, Any] = orjson.loads(path.read_bytes())
    return result


@contextlib.contextmanager
def interactive_driver(module: str, args: Mapping[str, Any]) -> Iterator[_Interactive]:
    """A driver that reports stages as JSON lines and waits for a line on stdin between them."""
    command = [PYTHON, "-m", f"bench.{module}", orjson.dumps(dict(args)).decode()]
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield _Interactive(process)
    finally:
        _stop(process)


class _Interactive:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"driver exited early ({self._process.wait()})")
        result: dict[str, Any] = orjson.loads(line)
        return result

    def proceed(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(b"go\n")
        self._process.stdin.flush()
