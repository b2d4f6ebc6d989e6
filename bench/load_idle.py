"""Load driver: open idle authenticated WebSockets in stages and hold them.

For each cumulative count in ``args["counts"]`` it opens sockets (``parallel``
handshakes in flight) until that many are open and each has received its first
frame (``session.created``), reports ``{"open", "accept_s", "failed"}`` as one
JSON line, and waits for a line on stdin before the next stage; after the last
it closes everything.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import websockets

from bench import _driver


async def _open(url: str, key: str) -> Any:
    ws = await websockets.connect(
        url,
        subprotocols=["chat-gateway.v1"],  # type: ignore[list-item]
        additional_headers={"authorization": f"Bearer {key}"},
        ping_interval=None,  # idle means idle: no keep-alive traffic
        compression=None,
        open_timeout=60,
    )
    await ws.recv()
    return ws


async def _main(args: dict[str, Any]) -> dict[str, Any]:
    url = args["url"].replace("http://", "ws://") + args["path"]
    sockets: list[Any] = []
    failed: list[str] = []
    gate = asyncio.Semaphore(args.get("parallel", 200))

    async def one() -> None:
        async with gate:
            try:
                sockets.append(await _open(url, args["key"]))
            except Exception as exc:
                failed.append(repr(exc))

    for count in args["counts"]:
        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(count - len(sockets))))
        elapsed = time.monotonic() - started
        _driver.emit({"open": len(sockets), "accept_s": elapsed, "failed": failed[:3]})
        await _driver.wait_for_go()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"closed": len(sockets)}


if __name__ == "__main__":
    _driver.run(_main)
