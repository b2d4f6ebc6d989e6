"""Run an ASGI app under a real uvicorn server on a free loopback port, in the current loop."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import uvicorn


class _QuietServer(uvicorn.Server):
    # Tests and benchmarks own the process's signals; uvicorn must not grab them.
    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@contextlib.asynccontextmanager
async def serve(app: Any, *, send_buffer: int | None = None, **config: Any) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port>; yields the base URL ``http://127.0.0.1:N``.

    Extra keyword arguments go to :class:`uvicorn.Config` (e.g. ``ws_max_size``).
    ``send_buffer`` pins SO_SNDBUF of the listening socket, which every accepted
    connection inherits (no autotuning): a client that stops reading then blocks
    the server's sends soon. On exit the server shuts down the way it does in production.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config.setdefault("log_level", "warning")
    config.setdefault("lifespan", "on")
    server = _QuietServer(uvicorn.Config(app, **config))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:
            if server.should_exit:
                raise RuntimeError("uvicorn failed to start")
            await anyio.sleep(0.005)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()
