"""Nothing is sent after a close: uvicorn closing the socket on its own (a protocol error
by the client) while answers stream must not make the writer send after it."""

from __future__ import annotations

import anyio
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gateway._logs import PRODUCTION_LOGGING, captured_logs
from tests.gateway.ws._support import PROTOCOL, gateway

pytestmark = pytest.mark.anyio

LONG = " ".join(f"w{i}" for i in range(3000))


@pytest.mark.parametrize("violation", ["invalid utf-8", "oversized frame"])
async def test_a_close_by_uvicorn_mid_stream_sends_nothing_after_it(violation: str) -> None:
    """uvicorn closes the socket itself (1007, 1009) while the writer is sending."""
    uvicorn = {**PRODUCTION_LOGGING, "ws_max_size": 64 * 1024}
    with captured_logs() as logs:
        async with gateway(uvicorn=uvicorn, demo_token_delay_ms=1) as gw:
            for round_ in range(10):
                async with connect(gw.url, subprotocols=[PROTOCOL], max_queue=None) as ws:
                    await ws.recv()  # session.created
                    for i in range(4):
                        await ws.send(
                            orjson.dumps(
                                {
                                    "type": "response.create",
                                    "request_id": f"r{round_}-{i}",
                                    "messages": [{"role": "user", "content": LONG}],
                                }
                            ).decode()
                        )
                    for _ in range(20):  # deltas are flowing
                        await ws.recv()
                    if violation == "invalid utf-8":
                        await ws.send(b'{"type": "ping", "ts": "\xff"}', text=True)
                    else:
                        await ws.send("x" * (65 * 1024))
                    with anyio.fail_after(5), pytest.raises(ConnectionClosed):
                        while True:
                            await ws.recv()
                    assert ws.close_code == (1007 if violation == "invalid utf-8" else 1009)
            with anyio.fail_after(5):
                await gw.manager.wait_for(lambda: gw.manager.sessions == 0)
    bad = logs.at_least("error")
    assert not bad, logs.text()
    assert "Unexpected ASGI message" not in logs.text()
