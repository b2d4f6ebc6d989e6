"""``chat-gateway``: the command line.

    chat-gateway serve [--host H] [--port P] [--config FILE]
    chat-gateway --version

Flags override the environment and the config file. An invalid configuration
prints one message naming the offending fields and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from gateway import __version__

EXIT_CONFIG_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-gateway", description="Real-time chat gateway for LLMs."
    )
    parser.add_argument("--version", action="version", version=f"chat-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the gateway server")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.add_argument(
        "--config", metavar="FILE", help="TOML config file (default: $GATEWAY_CONFIG)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return EXIT_CONFIG_ERROR
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    # Imported here so that ``--version`` and ``--help`` stay fast.
    from gateway.logging import configure_logging
    from gateway.server import run
    from gateway.settings import ConfigError, load_settings

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as exc:
        print(f"chat-gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    configure_logging(settings)
    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
