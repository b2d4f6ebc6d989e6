"""The behavioural suite runs once per backend: every test taking ``new_manager``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from sessions import MemoryBackend, SessionManager


class ManagerFactory(Protocol):
    def __call__(self, **kwargs: Any) -> SessionManager: ...


@pytest.fixture(params=["memory"])
def new_manager(request: pytest.FixtureRequest) -> Iterator[ManagerFactory]:
    """Builds a :class:`SessionManager` on the backend under test."""

    def build(**kwargs: Any) -> SessionManager:
        return SessionManager(backend=MemoryBackend(), **kwargs)

    yield build
