"""``chat-gateway health``: the liveness probe a container runtime runs (Docker's HEALTHCHECK).

The probe must hit the port the server really listens on, which ``serve --port``, the
environment, a config file or port 0 may each decide. So the server itself writes the
URL it serves to ``settings.address_file`` once it is listening (and removes it on
exit), and this command reads it back: nothing is guessed from ``GATEWAY_PORT``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

LIVE_PATH = "/health/live"
PROBE_TIMEOUT_S = 2.0


def served_url(host: str, port: int) -> str:
    """The URL a local probe reaches the server on (a wildcard bind is reached on loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def write_address(path: Path, url: str) -> None:
    """Atomically: a probe never reads half a URL."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(url + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_address(path: Path, url: str) -> None:
    """Remove the file if it still names this server (another one may have replaced it)."""
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8").strip() == url:
            path.unlink()


def probe(address_file: Path) -> str | None:
    """None when the server named in ``address_file`` answers live, else what is wrong."""
    try:
        base = address_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return f"no address in {address_file} ({exc.strerror}): not listening (yet)"
    # Never through a proxy from the environment: the server is local, and a proxy set
    # for provider traffic would otherwise mark a live gateway unhealthy.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(base + LIVE_PATH, timeout=PROBE_TIMEOUT_S) as response:
            status: int = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{base}{LIVE_PATH}: {exc}"
    return None if status == 200 else f"{base}{LIVE_PATH}: HTTP {status}"
