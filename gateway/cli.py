"""``chat-gateway``: the command line.

    chat-gateway serve [--host H] [--port P] [--config FILE]
    chat-gateway health [--config FILE]
    chat-gateway --version

Flags override the environment and the config file. An invalid configuration (a
bad value, a default model or alias whose provider is not configured, a port that
cannot be bound) prints one line naming the setting and exits with status 2; an
unknown ``GATEWAY_*`` variable is warned about. ``health`` exits 0 when the server
that wrote ``settings.address_file`` answers live, 1 otherwise (the image's
HEALTHCHECK).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from gateway import __version__

EXIT_CONFIG_ERROR = 2
EXIT_UNHEALTHY = 1


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
    health = commands.add_parser(
        "health", help="probe the running server's liveness (exit 0 = live)"
    )
    health.add_argument(
        "--config", metavar="FILE", help="TOML config file (default: $GATEWAY_CONFIG)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "health":
        return _health(args)
    parser.print_help()
    return EXIT_CONFIG_ERROR


def _health(args: argparse.Namespace) -> int:
    from gateway.healthcheck import probe
    from gateway.settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"chat-gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if settings.address_file is None:
        print("chat-gateway: address_file: set GATEWAY_ADDRESS_FILE for health", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    problem = probe(settings.address_file)
    if problem is not None:
        print(f"chat-gateway: unhealthy: {problem}", file=sys.stderr)
        return EXIT_UNHEALTHY
    return 0


def _serve(args: argparse.Namespace) -> int:
    # Imported here so that ``--version`` and ``--help`` stay fast.
    from gateway.logging import configure_logging
    from gateway.server import run
    from gateway.settings import ConfigError, load_settings
    from gateway.startup import check_routing, unknown_environment

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    for warning in unknown_environment(os.environ):
        print(f"chat-gateway: warning: {warning}", file=sys.stderr)
    try:
        settings = load_settings(args.config, **overrides)
        check_routing(settings)
        configure_logging(settings)
        run(settings)
    except ConfigError as exc:
        print(f"chat-gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
