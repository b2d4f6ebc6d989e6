"""uvicorn's own log lines under the production logging setup: no query strings (client
keys), and one warning line, not a traceback, for a text frame that is not UTF-8."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.log_redaction import redact_target
from tests.gateway._logs import PRODUCTION_LOGGING, Logs, captured_logs
from tests.gateway.ws._support import PROTOCOL, gateway

pytestmark = pytest.mark.anyio

SECRET = "ck-secret-in-the-url-0123456789"


@pytest.fixture
def log() -> Iterator[Logs]:
    with captured_logs() as logs:
        yield logs


def test_redact_target() -> None:
    assert redact_target("/a/b?api_key=x&y=1") == "/a/b?[redacted]"
    assert redact_target("/a/b") == "/a/b"


async def test_a_key_in_an_http_query_string_never_reaches_the_access_log(
    log: Logs,
) -> None:
    async with (
        gateway(client_keys=["ck-real"], uvicorn=PRODUCTION_LOGGING) as gw,
        httpx.AsyncClient(base_url=gw.base) as http,
    ):
        response = await http.post(
            f"/api/v1/chat/completions?api_key={SECRET}",
            json={"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 401
        # (Not a health probe: those are access-logged at debug only.)
        assert (await http.get(f"/api/v1/models?key={SECRET}")).status_code == 401
    text = log.text()
    assert SECRET not in text
    access = [r for r in log.records() if r["logger"] == "uvicorn.access"]
    assert len(access) == 2, text  # the access log is on, and redacted
    assert "/api/v1/chat/completions?[redacted]" in str(access[0]["event"])
    assert "401" in str(access[0]["event"])


async def test_a_key_in_a_websocket_query_string_never_reaches_the_log(log: Logs) -> None:
    async with gateway(client_keys=["ck-real"], uvicorn=PRODUCTION_LOGGING) as gw:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{gw.url}?api_key={SECRET}", subprotocols=[PROTOCOL])
        assert refused.value.response.status_code == 401
        headers = {"Authorization": "Bearer ck-real"}
        async with connect(
            f"{gw.url}?api_key={SECRET}", subprotocols=[PROTOCOL], additional_headers=headers
        ) as ws:
            assert orjson.loads(await ws.recv())["type"] == "session.created"
    text = log.text()
    assert SECRET not in text
    events = [str(r["event"]) for r in log.records()]
    handshakes = [e for e in events if "WebSocket /api/v1/ws" in e]
    assert len(handshakes) == 2, text
    assert all("/api/v1/ws?[redacted]" in line for line in handshakes)


async def test_invalid_utf8_closes_1007_with_one_warning_line(log: Logs) -> None:
    async with gateway(uvicorn=PRODUCTION_LOGGING) as gw:
        for _ in range(3):
            async with connect(gw.url, subprotocols=[PROTOCOL]) as ws:
                await ws.recv()  # session.created
                await ws.send(b'{"type": "ping", "ts": "\xff\xfe"}', text=True)
                with anyio.fail_after(5):
                    await ws.wait_closed()
                assert ws.close_code == 1007
        with anyio.fail_after(5):
            await gw.manager.wait_for(lambda: gw.manager.sessions == 0)
    text = log.text()
    assert "Traceback" not in text and "UnicodeDecodeError" not in text
    utf8 = [r for r in log.records() if "utf" in str(r["event"]).lower()]
    assert len(utf8) == 3, text  # one line per bad frame (each ends its socket)
    assert {r["level"] for r in utf8} == {"warning"}
    assert not [r for r in log.records() if r["level"] in ("error", "critical")], text
