"""Run one fake upstream as a standalone server (for benchmarks and manual tries).

    python -m tests.fakes --provider ollama --port 11500 --tokens 200 --delay-ms 5

Once it listens it prints ``listening on http://HOST:PORT`` on stdout (``--port 0``
picks a free port, which that line then names).

``GET /_fake/requests[?since=ID]`` lists what the fake saw (requests with an id
above ``since``): ``{"requests": [{id, path, stream, marker, started_at, ended_at,
outcome, chunks_sent}]}``, with ``marker`` the last user message's text and the
times from ``time.monotonic()`` (comparable across processes on Linux).
``POST /_fake/queue`` with ``{"scenarios": [{...Scenario fields...}]}`` queues
scenarios for the next requests (``tool_calls`` as ``{name, arguments, id}``
objects), so a test in another language can ask for tool calls, thinking or a
failure; it answers ``{"queued": N}``.
``--stamp-tokens`` makes every streamed token `` @<time.monotonic_ns()>`` taken
as it is sent, so a client can measure each token's delivery latency.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, SupportsIndex, overload

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from tests.fakes.base import FakeToolCall, FakeUpstream, Scenario, describe

PROVIDERS = ("openai", "anthropic", "ollama")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("--provider", choices=PROVIDERS, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 = any free port")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per streamed answer")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause before each token")
    parser.add_argument(
        "--stamp-tokens",
        action="store_true",
        help="each token is ' @<monotonic ns>' taken as it is sent (latency benchmarks)",
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="openai only: the lean asyncio server of tests.fakes.lean_openai (benchmarks)",
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


class _StampedTokens(list[str]):
    """Tokens whose text is the send time: the fakes read ``tokens[i]`` just before sending."""

    @overload
    def __getitem__(self, index: SupportsIndex) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> str | list[str]:
        if isinstance(index, slice):
            return super().__getitem__(index)
        return f" @{time.monotonic_ns()}"


def _with_stats(app: Any, upstream: FakeUpstream) -> Starlette:
    async def requests(request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        listed = [describe(r) for r in upstream.requests if r.id > since]
        return Response(orjson.dumps({"requests": listed}), media_type="application/json")

    async def queue(request: Request) -> Response:
        scenarios = [_scenario(spec) for spec in orjson.loads(await request.body())["scenarios"]]
        upstream.queue(*scenarios)
        return Response(orjson.dumps({"queued": len(scenarios)}), media_type="application/json")

    return Starlette(
        routes=[
            Route("/_fake/requests", requests),
            Route("/_fake/queue", queue, methods=["POST"]),
            Mount("/", app=app),
        ]
    )


def _scenario(spec: dict[str, Any]) -> Scenario:
    calls = [FakeToolCall(**call) for call in spec.pop("tool_calls", [])]
    return Scenario(**spec, tool_calls=calls)


def _server(args: argparse.Namespace, upstream: FakeUpstream) -> Callable[[socket.socket], Any]:
    """What serves the listening socket: the lean server, or the fake's app under uvicorn."""
    if args.lean:
        if args.provider != "openai":
            raise SystemExit("--lean exists for the openai fake only")
        from tests.fakes.lean_openai import serve_lean

        return lambda sock: serve_lean(upstream, sock)
    # Imported by name: each fake is its own module and only the chosen one is needed.
    name = f"tests.fakes.{args.provider}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise SystemExit(f"no fake for {args.provider}: {name} does not exist") from None
    app = _with_stats(module.create_app(upstream), upstream)
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="off", access_log=False)
    return lambda sock: uvicorn.Server(config).serve([sock])


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    tokens = [f" tok{i}" for i in range(args.tokens)]
    if args.stamp_tokens:
        tokens = _StampedTokens(tokens)
    scenario = Scenario(tokens=tokens, delay_s=args.delay_ms / 1000)
    upstream = FakeUpstream(scenario)
    serve = _server(args, upstream)

    # Binding here, before uvicorn starts, lets ``--port 0`` report the real port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this on Linux. Without it Nagle holds each small SSE
    # chunk until the client's delayed ACK (~40 ms): no real provider streams like that.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    # Listening now queues early connections in the backlog until uvicorn accepts them.
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        # uvloop when installed, as uvicorn itself would pick (and the gateway runs on).
        run = asyncio.run if importlib.util.find_spec("uvloop") is None else _uvloop_run
        run(serve(sock))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _uvloop_run(coro: Any) -> None:
    import uvloop

    uvloop.run(coro)


if __name__ == "__main__":
    main()
