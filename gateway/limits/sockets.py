"""The registry of one instance's open sockets, and what the drain needs of each.

Owned by the app's :class:`~gateway.services.Services` (built in the lifespan), not
a module global. It lives outside :mod:`gateway.ws` because the services hold it
while the socket endpoint reads the services: one direction of import each way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

import anyio

_C = TypeVar("_C")


class OpenSocket(Protocol):
    """What the drain needs of an open socket (the endpoint's ``SocketConnection``)."""

    def draining(self, deadline_ms: int) -> None:
        """Queue ``server.draining`` with the milliseconds left."""
        ...

    def close(self, code: int) -> None:
        """Flush what is queued, then close with ``code``."""
        ...


class SocketRegistry(Generic[_C]):
    """The open sockets of one instance, counted in total and per client key.

    ``key`` is the principal id; ``None`` (an open gateway without client keys)
    is counted only against the instance limit, since everyone shares it.
    """

    def __init__(self, max_sockets: int, max_per_key: int) -> None:
        self._max = max_sockets
        self._max_per_key = max_per_key
        self._members: dict[_C, str | None] = {}
        self._per_key: dict[str, int] = {}
        self._empty = anyio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[_C]:
        return iter(list(self._members))

    def count(self, key: str) -> int:
        return self._per_key.get(key, 0)

    def add(self, conn: _C, key: str | None) -> bool:
        """Admit ``conn``; ``False`` (and nothing recorded) when a limit is reached."""
        if len(self._members) >= self._max:
            return False
        if key is not None:
            if self._per_key.get(key, 0) >= self._max_per_key:
                return False
            self._per_key[key] = self._per_key.get(key, 0) + 1
        self._members[conn] = key
        if self._empty.is_set():
            self._empty = anyio.Event()
        return True

    def remove(self, conn: _C) -> None:
        if conn not in self._members:
            return
        key = self._members.pop(conn)
        if key is not None:
            left = self._per_key[key] - 1
            if left:
                self._per_key[key] = left
            else:
                del self._per_key[key]
        if not self._members:
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()
