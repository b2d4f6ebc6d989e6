"""Real nginx for the tests, configured by the committed ``deploy/nginx.conf``.

:func:`render` makes the test's configuration from the committed file by replacing
only what must differ on a test machine -- the upstream servers (loopback ports
instead of the compose service names), the listen address, and the pid, temp and log
paths (a temporary prefix, so nginx runs as the test's own child process). Each
replacement must match exactly where it is expected, so a change to the committed
file that the tests would no longer exercise fails them instead of going untested.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from anyio.abc import Process

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "nginx.conf"

_SERVER = re.compile(r"^(?P<indent>[ \t]*)server gateway-\d+:8000(?P<params>[^;]*);\n", re.M)
_LISTEN = re.compile(r"^[ \t]*listen 8080;$", re.M)
_HTTP = re.compile(r"^http \{$", re.M)
_ACCESS_LOG = re.compile(r"access_log /dev/stdout gateway;")


def binary() -> str | None:
    """The nginx binary (Debian installs it in /usr/sbin, not always on PATH)."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def _sub_once(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    result, count = pattern.subn(lambda _: replacement, text)
    assert count == 1, f"deploy/nginx.conf: expected one match of {pattern.pattern!r}, got {count}"
    return result


def render(upstreams: Sequence[str], port: int, prefix: Path) -> str:
    """The committed configuration, pointed at ``upstreams`` (``host:port``), listening
    on ``127.0.0.1:port``, with every file it writes under ``prefix``."""
    committed = COMMITTED.read_text()
    servers = list(_SERVER.finditer(committed))
    assert len(servers) == 2, "deploy/nginx.conf: expected the two replicas' server lines"
    indent, params = servers[0]["indent"], servers[0]["params"]
    assert all(s["params"] == params for s in servers), "replicas configured differently"
    lines = "".join(f"{indent}server {address}{params};\n" for address in upstreams)
    text = committed[: servers[0].start()] + lines + committed[servers[-1].end() :]
    text = _sub_once(_LISTEN, f"        listen 127.0.0.1:{port};", text)
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _sub_once(_HTTP, f"http {{\n{temp}", text)
    return _sub_once(_ACCESS_LOG, f"access_log {prefix / 'access.log'} gateway;", text)


def command(config: Path, prefix: Path, *extra: str) -> list[str]:
    """nginx in the foreground with ``config``; pid file and start-up log under ``prefix``."""
    nginx = binary()
    assert nginx is not None
    # As root, nginx would run its workers as "nobody", who cannot enter the test's
    # private temporary directory.
    user = "user root;" if os.geteuid() == 0 else ""
    main = f"daemon off; pid {prefix / 'nginx.pid'}; {user}"
    return [nginx, "-p", f"{prefix}/", "-c", str(config), "-e", "stderr", "-g", main, *extra]


def write_config(upstreams: Sequence[str], port: int, prefix: Path) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(render(upstreams, port, prefix))
    return config


@dataclass
class Nginx:
    base: str  # http://127.0.0.1:PORT
    process: Process
    prefix: Path

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/api/v1/ws"

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 10.0)
        return httpx.AsyncClient(base_url=self.base, **kwargs)

    def access_log(self) -> list[str]:
        path = self.prefix / "access.log"
        return path.read_text().splitlines() if path.exists() else []


@contextlib.asynccontextmanager
async def running(upstreams: Sequence[str], port: int, prefix: Path) -> AsyncIterator[Nginx]:
    """nginx as a child process, ready once its own health location answers."""
    config = write_config(upstreams, port, prefix)
    stderr = (prefix / "stderr.log").open("wb")
    process = await anyio.open_process(
        command(config, prefix), stdout=subprocess.DEVNULL, stderr=stderr
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            with anyio.fail_after(10):
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(
                            f"nginx exited {process.returncode}: {_read(prefix / 'stderr.log')}"
                        )
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/nginx-health")).status_code == 200:
                            break
                    await anyio.sleep(0.02)
        yield Nginx(base, process, prefix)
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()
        stderr.close()


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
