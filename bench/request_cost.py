"""What one streamed request costs the gateway: CPU, or instructions under callgrind.

    python -m bench.request_cost                  # CPU µs per request, 5 batches
    python -m bench.request_cost --instructions   # instructions per request (valgrind)

The app runs in this process and is called as ASGI directly (no server, no
client socket), with the SSE chat endpoint and the OpenAI adapter against the
lean fake upstream (one token per answer) in a process of its own. So a
request's cost is everything the gateway does for it: routing, validation,
the SDK's request build, the upstream exchange, the answer and the summary.

Time on this kind of virtual machine drifts with the host's load by ±30 %,
more than most changes to a request's path are worth; the instruction count
does not. ``--instructions`` runs this module twice under callgrind, with a
short and a long series of requests, and divides the difference, so start-up
and imports cancel out. It needs ``valgrind`` (Debian: ``apt-get install
valgrind``) and takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from bench import _driver, procs
from gateway.app import create_app
from gateway.logging import configure_logging
from gateway.settings import load_settings

_BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hello"}]}
)
_HEADERS = [
    (b"host", b"gateway"),
    (b"content-type", b"application/json"),
    (b"authorization", f"Bearer {procs.CLIENT_KEY}".encode()),
    (b"content-length", str(len(_BODY)).encode()),
]
_WARMUP = 200
_COLLECTED = re.compile(rb"Collected : (\d+)")


async def _one(app: Any) -> None:
    """One streamed chat request, as uvicorn would present it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/chat/completions",
        "raw_path": b"/api/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": _HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    answered = asyncio.Event()
    request_sent = False
    status = None

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": _BODY, "more_body": False}
        await answered.wait()  # as uvicorn: a disconnect only once the answer is out
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body"):
            answered.set()

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"the gateway answered {status}")


async def _measure(upstream: str, requests: int, batches: int) -> list[float]:
    """CPU µs per request of each batch, after a warm-up."""
    # The benchmark gateway's own configuration (client key, upstream, log level).
    env = procs.gateway_env(upstream)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("GATEWAY_", "OPENAI_"))})
    settings = load_settings()
    configure_logging(settings)
    app = create_app(settings)
    per_batch = []
    async with app.router.lifespan_context(app):
        for _ in range(_WARMUP):
            await _one(app)
        for _ in range(batches):
            started = time.process_time()
            for _ in range(requests):
                await _one(app)
            per_batch.append((time.process_time() - started) / max(requests, 1) * 1e6)
    return per_batch


def _run(requests: int, batches: int) -> list[float]:
    placement = procs.isolated()
    with procs.fake_upstream(tokens=1, lean=True, cores=placement.load) as fake:
        if placement.gateway is not None:
            os.sched_setaffinity(0, placement.gateway)
        if _driver.uses_uvloop():
            import uvloop

            return uvloop.run(_measure(fake.url, requests, batches))
        return asyncio.run(_measure(fake.url, requests, batches))


def _instructions(requests: int) -> int:
    """Instructions executed by a whole run of ``requests`` requests, under callgrind."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "bench.request_cost", "--requests", str(requests), "--batches", "1"]
    done = subprocess.run(command, cwd=procs.REPO, capture_output=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed:\n{done.stderr.decode()[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per batch")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind instead"
    )
    args = parser.parse_args(argv)
    if args.instructions:
        short, long = 100, 700
        counts = {n: _instructions(n) for n in (short, long)}
        per_request = (counts[long] - counts[short]) / (long - short)
        print(f"instructions per request: {per_request:,.0f}")
        return 0
    per_batch = _run(args.requests, args.batches)
    shown = " ".join(f"{us:.0f}" for us in per_batch)
    print(f"CPU µs per request, per batch of {args.requests}: {shown} (min {min(per_batch):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
