"""The behavioural suite runs once per backend: every test taking ``new_manager``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from gateway.scaleout.redis_backend import RedisBackend
from sessions import Backend, MemoryBackend, SessionManager

_prefixes = itertools.count()


class ManagerFactory(Protocol):
    def __call__(self, **kwargs: Any) -> SessionManager: ...


@pytest.fixture(params=["memory", "redis"])
def new_manager(request: pytest.FixtureRequest) -> Iterator[ManagerFactory]:
    """Builds a :class:`SessionManager` on the backend under test (Redis: a real
    redis-server, a key prefix of this test's own)."""
    kind = request.param
    url = request.getfixturevalue("redis_server").url if kind == "redis" else ""

    def build(**kwargs: Any) -> SessionManager:
        # Each manager built here is a world of its own, as with the memory backend.
        prefix = f"t{next(_prefixes)}:"
        backend: Backend
        if kind == "redis":
            backend = RedisBackend(
                url, window_s=kwargs.get("resume_window_s", 30.0), prefix=prefix, lease_s=1.0
            )
        else:
            backend = MemoryBackend()
        return SessionManager(backend=backend, **kwargs)

    yield build
