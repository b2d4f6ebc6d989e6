"""Run one fake upstream as a standalone server (for benchmarks and manual tries).

    python -m tests.fakes --provider ollama --port 11500 --tokens 200 --delay-ms 5

Once it listens it prints ``listening on http://HOST:PORT`` on stdout (``--port 0``
picks a free port, which that line then names).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import socket
from collections.abc import Sequence

import uvicorn

from tests.fakes.base import FakeUpstream, Scenario

PROVIDERS = ("openai", "anthropic", "ollama")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("--provider", choices=PROVIDERS, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 = any free port")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per streamed answer")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause before each token")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    # Imported by name: each fake is its own module and only the chosen one is needed.
    name = f"tests.fakes.{args.provider}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise SystemExit(f"no fake for {args.provider}: {name} does not exist") from None
    scenario = Scenario(
        tokens=[f" tok{i}" for i in range(args.tokens)], delay_s=args.delay_ms / 1000
    )
    app = module.create_app(FakeUpstream(scenario))

    # Binding here, before uvicorn starts, lets ``--port 0`` report the real port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    # Listening now queues early connections in the backlog until uvicorn accepts them.
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="off", access_log=False)
    try:
        asyncio.run(uvicorn.Server(config).serve([sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
