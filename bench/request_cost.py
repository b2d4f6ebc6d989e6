"""What one streamed request costs the gateway: CPU, or instructions under callgrind.

    python -m bench.request_cost                  # CPU µs per request, 5 batches
    python -m bench.request_cost --instructions   # instructions per request (valgrind)
    python -m bench.request_cost --instructions --per-token --transport httpx2

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

``--transport httpx2`` runs the same relay with the adapters on ``httpx2``'s
default transport instead of the gateway's own (``GATEWAY_UPSTREAM_TRANSPORT``).
``--per-token`` measures answers of 1 and of :data:`_LONG_ANSWER` tokens and
divides the difference: the gateway's cost per relayed token, without the
request's start and end.
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
_LONG_ANSWER = 51  # tokens per answer for --per-token (against answers of 1)
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


def _run(requests: int, batches: int, tokens: int) -> list[float]:
    placement = procs.isolated()
    with procs.fake_upstream(tokens=tokens, lean=True, cores=placement.load) as fake:
        if placement.gateway is not None:
            os.sched_setaffinity(0, placement.gateway)
        if _driver.uses_uvloop():
            import uvloop

            return uvloop.run(_measure(fake.url, requests, batches))
        return asyncio.run(_measure(fake.url, requests, batches))


def _instructions(requests: int, tokens: int, transport: str) -> int:
    """Instructions executed by a whole run of ``requests`` requests, under callgrind."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "bench.request_cost", "--requests", str(requests), "--batches", "1"]
    command += ["--tokens", str(tokens), "--transport", transport]
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
    parser.add_argument("--tokens", type=int, default=1, help="tokens per answer")
    parser.add_argument(
        "--transport",
        choices=("gateway", "httpx2"),
        default="gateway",
        help="the adapters' transport: the gateway's own, or httpx2's default",
    )
    parser.add_argument(
        "--per-token",
        action="store_true",
        help=f"with --instructions: also per relayed token (answers of 1 and {_LONG_ANSWER})",
    )
    args = parser.parse_args(argv)
    os.environ["GATEWAY_UPSTREAM_TRANSPORT"] = args.transport
    if args.instructions:
        short, long = 100, 700
        counts = {n: _instructions(n, args.tokens, args.transport) for n in (short, long)}
        per_request = (counts[long] - counts[short]) / (long - short)
        print(
            f"{args.transport}: instructions per request ({args.tokens} token): {per_request:,.0f}"
        )
        if args.per_token:
            longer = {n: _instructions(n, _LONG_ANSWER, args.transport) for n in (short, long)}
            per_long = (longer[long] - longer[short]) / (long - short)
            per_token = (per_long - per_request) / (_LONG_ANSWER - args.tokens)
            print(
                f"{args.transport}: instructions per request ({_LONG_ANSWER} tokens): "
                f"{per_long:,.0f}; per relayed token: {per_token:,.0f}"
            )
        return 0
    per_batch = _run(args.requests, args.batches, args.tokens)
    shown = " ".join(f"{us:.0f}" for us in per_batch)
    print(f"CPU µs per request, per batch of {args.requests}: {shown} (min {min(per_batch):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
