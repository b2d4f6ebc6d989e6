"""What every load driver shares: JSON arguments in, JSON result out, the event loop.

A driver is ``python -m bench.load_x '<json args>'``; it prints one JSON object
(or writes it to the file ``$BENCH_RESULT_PATH`` names).
uvloop is used when installed, because uvicorn (and so the gateway and the fake)
uses it then too: both sides of every measurement run on the same loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Collection, Coroutine
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped]

# Where ``run`` writes the result instead of stdout, when set (``procs.run_driver`` does).
RESULT_PATH_ENV = "BENCH_RESULT_PATH"


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
    path = os.environ.get(RESULT_PATH_ENV)
    if path:
        # A result with latency samples is half a megabyte; a file takes it whole
        # (one full run once got a stdout pipe's worth cut short).
        with open(path, "wb") as out:
            out.write(orjson.dumps(result))
    else:
        _write_line(result)


def _write_line(payload: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.flush()


def emit(stage: dict[str, Any]) -> None:
    """One stage report of an interactive driver."""
    _write_line(stage)


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


async def fake_records(
    fake_url: str, since: int, markers: Collection[str], grace_s: float
) -> dict[str, dict[str, Any]]:
    """The fake upstream's record of each request named by one of ``markers``, by marker.

    Waits (up to ``grace_s``) until every marker is there and none is still running,
    so that a stream the gateway is just closing is not counted as orphaned.
    """
    deadline = time.monotonic() + grace_s
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            reply = await client.get(f"{fake_url}/_fake/requests", params={"since": since})
            listed = reply.json()["requests"]
            records = {r["marker"]: r for r in listed if r["marker"] in markers}
            pending = [r for r in records.values() if r["outcome"] == "pending"]
            if (len(records) == len(markers) and not pending) or time.monotonic() > deadline:
                return records
            await asyncio.sleep(0.05)
