"""Client key authentication, shared by the HTTP routes and the WebSocket endpoint.

When no client keys are configured the gateway is open (the app logs a loud
warning at start-up) and every caller is the ``anonymous`` principal. Otherwise a
caller must present a valid key; the principal is then a fingerprint of the key
(or the key's configured name), safe to log, never the key itself.

Keys are held only as SHA-256 digests, built once at start-up by
:class:`Authenticator`: the plain key of a ``client_keys`` entry is hashed and
dropped, and ``[[keys]]`` entries may give the digest alone, so neither the
process nor its config file needs the secret. A presented key is hashed and its
digest compared with every stored one in constant time, without stopping at a
match, so the time taken says nothing about which key (or how much of one) was
right.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import Forbidden, Unauthorized
from gateway.router import Route
from gateway.settings import ClientKey, Settings

ANONYMOUS = "anonymous"
_FINGERPRINT_CHARS = 12
_DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``id`` is ``anonymous``, ``key-<12 hex>`` or the key's name.

    ``models`` are the patterns the key may use (empty: every model).
    """

    id: str
    models: tuple[str, ...] = ()

    def check_model(self, route: Route) -> None:
        """:class:`Forbidden` unless the requested name or its primary target is allowed."""
        if not self.models:
            return
        names = (route.requested_model, route.targets[0].qualified)
        if any(fnmatch.fnmatchcase(name, p) for name in names for p in self.models):
            return
        raise Forbidden(
            f"this API key may not use model '{route.requested_model[:120]}'", param="model"
        )


@dataclass(frozen=True, slots=True)
class _StoredKey:
    digest: bytes
    principal: Principal
    expires_at: float | None
    revoked: bool


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def fingerprint(key: str) -> str:
    """A stable, non-reversible short id for a key (for logs and per-key limits)."""
    return _fingerprint(digest_of(key))


def _fingerprint(digest: bytes) -> str:
    return f"key-{digest.hex()[:_FINGERPRINT_CHARS]}"


class Authenticator:
    """The configured keys as digests; ``clock`` (epoch seconds) decides expiry."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._keys = tuple(
            [_plain_entry(s.get_secret_value()) for s in settings.client_keys]
            + [_policy_entry(k) for k in settings.keys]
        )

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, token: str | None) -> Principal:
        """The principal for ``token``; raises :class:`Unauthorized` when it is not valid."""
        if not self._keys:
            return Principal(ANONYMOUS)
        if not token:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        presented = digest_of(token)
        found: _StoredKey | None = None
        for stored in self._keys:
            if hmac.compare_digest(presented, stored.digest):
                found = stored
        if found is None:
            raise Unauthorized("invalid API key")
        if found.revoked:
            raise Unauthorized("this API key has been revoked")
        if found.expires_at is not None and self._clock() >= found.expires_at:
            raise Unauthorized("this API key has expired")
        return found.principal


def _plain_entry(value: str) -> _StoredKey:
    if value.startswith(_DIGEST_PREFIX) and len(value) == len(_DIGEST_PREFIX) + 64:
        digest = bytes.fromhex(value.removeprefix(_DIGEST_PREFIX))
    else:
        digest = digest_of(value)
    return _StoredKey(digest, Principal(_fingerprint(digest)), None, False)


def _policy_entry(config: ClientKey) -> _StoredKey:
    if config.sha256 is not None:
        digest = bytes.fromhex(config.sha256)
    else:
        assert config.key is not None  # the model allows exactly one of the two
        digest = digest_of(config.key.get_secret_value())
    principal = Principal(config.name or _fingerprint(digest), tuple(config.models))
    return _StoredKey(digest, principal, _epoch(config.expires_at), config.revoked)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


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
