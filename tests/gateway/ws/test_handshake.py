"""Handshake: subprotocol, client keys (header or ``bearer.`` subprotocol), Origin, capacity."""

from __future__ import annotations

import orjson
import pytest
from websockets.exceptions import InvalidStatus

from tests.gateway.ws._support import PROTOCOL, gateway

pytestmark = pytest.mark.anyio

KEY = "ck-test-secret-1"


async def test_the_server_answers_with_exactly_the_protocol() -> None:
    async with gateway() as gw, gw.connect() as client:
        assert client.ws.subprotocol == PROTOCOL
        assert (await client.next())["type"] == "session.created"


async def test_a_client_without_the_protocol_is_rejected() -> None:
    async with gateway() as gw:
        with pytest.raises(InvalidStatus) as info:
            async with gw.connect(subprotocols=["something-else"]):
                pass
        assert info.value.response.status_code == 400
        body = orjson.loads(info.value.response.body or b"{}")
        assert body["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"subprotocols": [PROTOCOL, "bearer.wrong-key"]},
        {"additional_headers": {"Authorization": "Bearer wrong-key"}},
        {"additional_headers": {"Authorization": f"Basic {KEY}"}},
    ],
    ids=["missing", "wrong-subprotocol-token", "wrong-header-token", "not-bearer"],
)
async def test_missing_or_wrong_key_is_rejected_401(credentials: dict[str, object]) -> None:
    async with gateway(client_keys=[KEY]) as gw:
        with pytest.raises(InvalidStatus) as info:
            async with gw.connect(**credentials):  # type: ignore[arg-type]
                pass
        response = info.value.response
        assert response.status_code == 401
        body = orjson.loads(response.body or b"{}")
        assert body["error"]["code"] == "unauthorized"
        assert KEY not in (response.body or b"").decode()
        assert gw.manager.sessions == 0


async def test_bearer_subprotocol_is_accepted_and_never_echoed() -> None:
    async with (
        gateway(client_keys=[KEY]) as gw,
        gw.connect(subprotocols=[PROTOCOL, f"bearer.{KEY}"]) as client,
    ):
        assert client.ws.subprotocol == PROTOCOL
        assert client.ws.response is not None
        assert client.ws.response.headers["Sec-WebSocket-Protocol"] == PROTOCOL
        got = await client.response(await client.create("authorised"))
        assert got.text == "authorised"


async def test_authorization_header_is_accepted() -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        gateway(client_keys=["other", KEY]) as gw,
        gw.connect(additional_headers=headers) as client,
    ):
        assert (await client.next())["type"] == "session.created"


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        (["https://app.example"], "https://app.example", True),
        (["https://app.example"], "https://evil.example", False),
        ([], "https://evil.example", False),
        (["*"], "https://anything.example", True),
        ([], None, True),  # not a browser
        ([], "SAME", True),  # the gateway's own origin
    ],
)
async def test_origin_is_checked(allowed: list[str], origin: str | None, ok: bool) -> None:
    async with gateway(allowed_origins=allowed) as gw:
        if origin == "SAME":
            origin = gw.base
        kwargs = {} if origin is None else {"origin": origin}
        if ok:
            async with gw.connect(**kwargs) as client:  # type: ignore[arg-type]
                assert (await client.next())["type"] == "session.created"
        else:
            with pytest.raises(InvalidStatus) as info:
                async with gw.connect(**kwargs):  # type: ignore[arg-type]
                    pass
            assert info.value.response.status_code == 403


async def test_instance_at_capacity_closes_1013() -> None:
    async with gateway(max_sockets=2) as gw:
        first, second = await gw.open(), await gw.open()
        async with gw.connect() as third:
            assert await third.closed() == 1013
        assert len(gw.services.sockets or ()) == 2
        await first.aclose()
        await second.aclose()


async def test_key_at_capacity_closes_1013_for_that_key_only() -> None:
    async with gateway(client_keys=["k1", "k2"], max_sockets_per_key=1) as gw:
        k1 = {"subprotocols": [PROTOCOL, "bearer.k1"]}
        first = await gw.open(**k1)
        async with gw.connect(**k1) as again:  # type: ignore[arg-type]
            assert await again.closed() == 1013
        other = await gw.open(subprotocols=[PROTOCOL, "bearer.k2"])
        assert other.frames[0]["type"] == "session.created"
        await first.aclose()
        await other.aclose()
