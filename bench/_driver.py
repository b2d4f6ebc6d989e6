"""What every load driver shares: JSON arguments in, JSON result out, the event loop.

A driver is ``python -m bench.load_x '<json args>'``; it prints one JSON object.
uvloop is used when installed, because uvicorn (and so the gateway and the fake)
uses it then too: both sides of every measurement run on the same loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import psutil  # type: ignore[import-untyped]


def uses_uvloop() -> bool:
    """uvicorn picks uvloop when it is importable; the drivers follow the same rule."""
    return importlib.util.find_spec("uvloop") is not None


def run(main: Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]) -> None:
    args: dict[str, Any] = orjson.loads(sys.argv[1])
    result: dict[str, Any]
    if uses_uvloop():
        import uvloop

        result = uvloop.run(main(args))
    else:
        result = asyncio.run(main(args))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()


def emit(stage: dict[str, Any]) -> None:
    """One stage report of an interactive driver."""
    sys.stdout.buffer.write(orjson.dumps(stage) + b"\n")
    sys.stdout.flush()


async def wait_for_go() -> None:
    """Block (off the loop) until the orchestrator writes a line on stdin."""
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """User+system CPU seconds of each named process, from the kernel's accounting."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        out[name] = float(times.user + times.system)
    return out
