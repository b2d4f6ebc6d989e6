"""Client keys: who may use ``/api/v1``; and CORS for configured browser origins."""

from __future__ import annotations

import hashlib

import openai
import pytest

from gateway.auth import Authenticator, Principal, bearer_token
from gateway.errors import Unauthorized
from gateway.settings import Settings, load_settings
from tests.gateway.http._support import gateway, user

KEYS = "key-alpha-0123456789,key-beta-9876543210"


def authenticate(settings: Settings, token: str | None) -> Principal:
    return Authenticator(settings).authenticate(token)


# --- the shared authentication functions --------------------------------------------------


def test_without_client_keys_everyone_is_anonymous() -> None:
    settings = load_settings()
    assert authenticate(settings, None) == Principal("anonymous")
    assert authenticate(settings, "anything") == Principal("anonymous")


def test_every_configured_key_is_accepted_and_the_principal_is_no_secret() -> None:
    settings = load_settings(client_keys=KEYS)
    alpha = authenticate(settings, "key-alpha-0123456789")
    beta = authenticate(settings, "key-beta-9876543210")
    assert alpha != beta
    assert "alpha" not in alpha.id and "0123456789" not in alpha.id
    digest = hashlib.sha256(b"key-alpha-0123456789").hexdigest()
    assert alpha.id == f"key-{digest[:12]}"


@pytest.mark.parametrize(
    "token", [None, "", "key-alpha", "key-alpha-0123456789x", "KEY-ALPHA-0123456789"]
)
def test_missing_or_wrong_keys_are_unauthorized(token: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        authenticate(load_settings(client_keys=KEYS), token)
    assert caught.value.http_status == 401
    assert "key-alpha-0123456789" not in caught.value.message


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        (None, None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    assert bearer_token(headers) == token


# --- over HTTP ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_api_requires_a_valid_key_when_keys_are_configured() -> None:
    async with gateway(client_keys=KEYS) as gw:
        with pytest.raises(openai.AuthenticationError) as wrong:
            await gw.openai(api_key="key-gamma").chat.completions.create(
                model="demo/echo", messages=user("x")
            )
        with pytest.raises(openai.AuthenticationError):
            await gw.openai(api_key="key-gamma").models.list()
        ok = await gw.openai(api_key="key-beta-9876543210").chat.completions.create(
            model="demo/echo", messages=user("let me in")
        )
        async with gw.http() as client:
            missing = await client.post(
                "/api/v1/chat/completions", json={"model": "demo/echo", "messages": user("x")}
            )
    assert wrong.value.status_code == 401
    assert wrong.value.code == "unauthorized"
    assert wrong.value.type == "authentication_error"
    assert ok.choices[0].message.content == "let me in"
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "key-alpha" not in missing.text


@pytest.mark.anyio
async def test_cors_preflight_for_a_configured_origin() -> None:
    origin = "https://desk.example.com"
    async with (
        gateway(allowed_origins=f"{origin},https://other.example.com") as gw,
        gw.http() as client,
    ):
        allowed = await client.options(
            "/api/v1/chat/completions",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )
        denied = await client.options(
            "/api/v1/chat/completions",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        simple = await client.get("/api/v1/models", headers={"origin": origin})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert denied.status_code == 403  # with a hint naming the setting (test_browser_hints)
    assert "access-control-allow-origin" not in denied.headers
    assert simple.headers["access-control-allow-origin"] == origin
