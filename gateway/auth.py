"""Client key authentication, shared by the HTTP routes and the WebSocket endpoint.

When ``settings.client_keys`` is empty the gateway is open (the app logs a loud
warning at start-up) and every caller is the ``anonymous`` principal. Otherwise a
caller must present one of the keys; the principal is then a fingerprint of the
key, safe to log, never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import Unauthorized
from gateway.settings import Settings

ANONYMOUS = "anonymous"
_FINGERPRINT_CHARS = 12


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``id`` is ``anonymous`` or ``key-<12 hex>``: never a secret."""

    id: str


def fingerprint(key: str) -> str:
    """A stable, non-reversible short id for a key (for logs and per-key limits)."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"key-{digest[:_FINGERPRINT_CHARS]}"


def authenticate(settings: Settings, token: str | None) -> Principal:
    """The principal for ``token``; raises :class:`Unauthorized` when it does not match."""
    if not settings.client_keys:
        return Principal(ANONYMOUS)
    if not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    presented = token.encode("utf-8")
    matched = False
    # Compare against every key, without stopping at a match, so the time taken
    # says nothing about which key (or how much of one) was right.
    for key in settings.client_keys:
        if hmac.compare_digest(presented, key.get_secret_value().encode("utf-8")):
            matched = True
    if not matched:
        raise Unauthorized("invalid API key")
    return Principal(fingerprint(token))


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None
