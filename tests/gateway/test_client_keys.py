"""Client keys with a policy: stored hashed, expiry, revocation, model allowlists.

Unit tests of :class:`Authenticator`, then the same rules seen over HTTP (through
the official SDK) and over a real WebSocket, where a key also cannot touch
another key's responses.
"""

from __future__ import annotations

import hashlib
from typing import Any

import anyio
import openai
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from gateway.auth import Authenticator
from gateway.errors import Forbidden, Unauthorized
from gateway.router import Route, Target
from gateway.settings import load_settings
from tests.gateway.http import _support as http_support
from tests.gateway.ws import _support as ws_support

ALPHA = "ck-alpha-0123456789abcdef"
BETA = "ck-beta-fedcba9876543210"
NOW = 1_800_000_000.0  # 2027-01-15


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(entries)}


# --- the authenticator ----------------------------------------------------------------


def test_a_key_given_only_as_its_digest_is_accepted() -> None:
    auth = Authenticator(load_settings(**keys({"sha256": sha(ALPHA), "name": "desk"})))
    assert auth.authenticate(ALPHA).id == "desk"
    with pytest.raises(Unauthorized, match="invalid API key"):
        auth.authenticate(BETA)


def test_client_keys_accept_a_sha256_prefixed_digest() -> None:
    auth = Authenticator(load_settings(client_keys=f"sha256:{sha(ALPHA)}"))
    assert auth.authenticate(ALPHA).id == f"key-{sha(ALPHA)[:12]}"


def test_plain_keys_are_not_kept_after_start_up() -> None:
    auth = Authenticator(load_settings(client_keys=ALPHA, **keys({"key": BETA})))
    held = repr([(k.digest, k.principal) for k in auth._keys])
    assert ALPHA not in held and BETA not in held
    assert all(len(k.digest) == 32 for k in auth._keys)


def test_expiry_follows_the_clock() -> None:
    settings = load_settings(**keys({"key": ALPHA, "expires_at": "2027-01-15T08:00:00Z"}))
    before = Authenticator(settings, clock=lambda: NOW - 1)
    after = Authenticator(settings, clock=lambda: NOW + 3600)
    before.authenticate(ALPHA)
    with pytest.raises(Unauthorized, match="expired"):
        after.authenticate(ALPHA)


def test_a_revoked_key_is_refused() -> None:
    auth = Authenticator(load_settings(**keys({"key": ALPHA, "revoked": True}, {"key": BETA})))
    with pytest.raises(Unauthorized, match="revoked"):
        auth.authenticate(ALPHA)
    auth.authenticate(BETA)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "neither"},
        {"key": ALPHA, "sha256": sha(ALPHA)},
        {"sha256": "abc"},
        {"key": ALPHA, "expires_at": "2027-01-15T08:00:00"},
    ],
    ids=["no secret", "both", "short digest", "naive time"],
)
def test_bad_key_entries_are_configuration_errors(entry: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="keys"):
        load_settings(**keys(entry))


def test_a_model_allowlist_matches_the_requested_name_or_its_target() -> None:
    auth = Authenticator(load_settings(**keys({"key": ALPHA, "models": ["demo/*", "fast"]})))
    principal = auth.authenticate(ALPHA)
    principal.check_model(Route("demo/echo", (Target("demo", "echo"),)))
    principal.check_model(Route("fast", (Target("openai", "gpt-4o-mini"),)))
    principal.check_model(Route("cheap", (Target("demo", "lorem"),)))
    with pytest.raises(Forbidden) as caught:
        principal.check_model(Route("gpt-4o", (Target("openai", "gpt-4o"),)))
    assert caught.value.param == "model"


# --- over HTTP ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_http_refuses_revoked_keys_and_models_outside_the_allowlist() -> None:
    config = keys(
        {"key": ALPHA, "models": ["demo/echo"]},
        {"key": BETA, "revoked": True},
    )
    async with http_support.gateway(**config) as gw:
        allowed = gw.openai(api_key=ALPHA)
        ok = await allowed.chat.completions.create(
            model="demo/echo", messages=http_support.user("hi")
        )
        assert ok.choices[0].message.content == "hi"
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await allowed.chat.completions.create(
                model="demo/lorem", messages=http_support.user("hi"), stream=True
            )
        with pytest.raises(openai.AuthenticationError) as revoked:
            await gw.openai(api_key=BETA).chat.completions.create(
                model="demo/echo", messages=http_support.user("hi")
            )
    assert denied.value.code == "forbidden"
    assert "demo/lorem" in denied.value.message
    assert "revoked" in revoked.value.message
    assert BETA not in revoked.value.message


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_http_refuses_an_expired_key_with_a_typed_401_that_never_echoes_it(
    stream: bool,
) -> None:
    config = keys({"key": ALPHA, "expires_at": "2020-01-01T00:00:00Z"}, {"key": BETA})
    body = {"model": "demo/echo", "messages": http_support.user("hi"), "stream": stream}
    async with http_support.gateway(**config) as gw, gw.http() as http:
        expired = await http.post(
            "/api/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ALPHA}"}
        )
        valid = await http.post(
            "/api/v1/chat/completions", json=body, headers={"authorization": f"Bearer {BETA}"}
        )
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == "Bearer"
    error = expired.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "unauthorized")
    assert "expired" in error["message"]
    assert ALPHA not in expired.text
    assert not any(ALPHA in v for v in expired.headers.values())
    assert valid.status_code == 200, valid.text


# --- over a real WebSocket --------------------------------------------------------------


@pytest.mark.anyio
async def test_ws_refuses_expired_keys_at_the_handshake() -> None:
    config = keys({"key": ALPHA, "expires_at": "2020-01-01T00:00:00Z"}, {"key": BETA})
    async with ws_support.gateway(**config) as gw:
        with pytest.raises(InvalidStatus) as info:
            await gw.open(additional_headers={"authorization": f"Bearer {ALPHA}"})
        assert info.value.response.status_code == 401
        assert b"expired" in info.value.response.body
        client = await gw.open(additional_headers={"authorization": f"Bearer {BETA}"})
        await client.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("carrier", ["header", "subprotocol"])
async def test_ws_refuses_revoked_keys_at_the_handshake(carrier: str) -> None:
    config = keys({"key": ALPHA, "revoked": True}, {"key": BETA})

    def credentials(key: str) -> dict[str, Any]:
        if carrier == "header":
            return {"additional_headers": {"authorization": f"Bearer {key}"}}
        return {"subprotocols": [ws_support.PROTOCOL, f"bearer.{key}"]}

    async with ws_support.gateway(**config) as gw:
        with pytest.raises(InvalidStatus) as info:
            await gw.open(**credentials(ALPHA))
        response = info.value.response
        assert response.status_code == 401
        error = orjson.loads(response.body)["error"]
        assert (error["type"], error["code"]) == ("authentication_error", "unauthorized")
        assert "revoked" in error["message"]
        assert ALPHA.encode() not in response.body
        assert gw.services.sockets is not None and len(gw.services.sockets) == 0
        client = await gw.open(**credentials(BETA))
        await client.send("ping", ts=1)
        assert (await client.next("pong"))["ts"] == 1
        await client.aclose()


@pytest.mark.anyio
async def test_ws_model_allowlist_refuses_with_the_request_id() -> None:
    async with ws_support.gateway(**keys({"key": ALPHA, "models": ["demo/echo"]})) as gw:
        client = await gw.open(additional_headers={"authorization": f"Bearer {ALPHA}"})
        await client.send(
            "response.create",
            request_id="r-denied",
            model="demo/lorem",
            messages=ws_support.user("hi"),
        )
        error = await client.next("error")
        assert error["error"]["code"] == "forbidden"
        assert error["error"]["request_id"] == "r-denied"
        request_id = await client.create("hello", model="demo/echo")
        assert (await client.response(request_id)).text == "hello"
        await client.aclose()


@pytest.mark.anyio
async def test_a_key_cannot_cancel_or_resume_another_keys_response() -> None:
    async with ws_support.gateway(client_keys=f"{ALPHA},{BETA}", demo_token_delay_ms=20) as gw:
        owner = await gw.open(additional_headers={"authorization": f"Bearer {ALPHA}"})
        other = await gw.open(additional_headers={"authorization": f"Bearer {BETA}"})
        request_id = await owner.create("one two three four five six seven eight")
        created = await owner.next("response.created", lambda f: f["request_id"] == request_id)
        response_id = created["response_id"]
        epoch = created.get("epoch")

        await other.send("response.cancel", response_id=response_id)
        refused = await other.next("error")
        assert refused["error"]["code"] == "response_not_found"
        await other.send("response.cancel", request_id=request_id)
        assert (await other.next("error"))["error"]["code"] == "response_not_found"
        await other.send("response.resume", response_id=response_id, epoch=epoch, last_seq=0)
        resumed = await other.next("resume.result")
        assert resumed["recovered"] is False
        assert (await other.next("error"))["error"]["code"] == "response_not_found"

        done = await owner.next("response.done", lambda f: f["response_id"] == response_id)
        assert done["status"] == "completed"
        with anyio.move_on_after(0.2):
            stray = await other.next()
            pytest.fail(f"the other key's socket received {stray}")
        await owner.aclose()
        await other.aclose()
