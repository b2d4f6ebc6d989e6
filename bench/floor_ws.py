"""The floor for idle sockets: a bare Starlette WebSocket endpoint under the same uvicorn setup.

It does what any authenticated socket must (check the key, accept with the
subprotocol, send one small frame, keep a reader waiting) and nothing else, with
the gateway's uvicorn options (``websockets-sansio``, no per-message deflate).
"""

from __future__ import annotations

import argparse
import hmac

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


def create_app(key: str) -> Starlette:
    expected = f"Bearer {key}".encode()

    async def socket(websocket: WebSocket) -> None:
        presented = websocket.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, expected):
            await websocket.close(1008)
            return
        await websocket.accept(subprotocol="chat-gateway.v1")
        await websocket.send_text('{"type":"session.created"}')
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ready")

    return Starlette(routes=[WebSocketRoute("/ws", socket), Route("/ready", ready)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_ws")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.key),
        host="127.0.0.1",
        port=args.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
