"""The single-process :class:`~sessions.backend.Backend`: dictionaries, nothing shared."""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager

from sessions.backend import Control, RemoteRecord
from sessions.events import ResponseEvent
from sessions.response import Publish, Response


class MemoryBackend:
    """Every response lives in this process; the shared half finds nothing."""

    shared = False

    def __init__(self) -> None:
        self._id = "inst_" + secrets.token_urlsafe(8)
        self._responses: dict[str, Response] = {}
        self._by_request: dict[tuple[str, str], Response] = {}
        self._conversations: dict[tuple[str, str], Response] = {}

    @property
    def instance_id(self) -> str:
        return self._id

    @property
    def available(self) -> bool:
        return True

    @asynccontextmanager
    async def running(self, on_control: Callable[[Control], None]) -> AsyncIterator[None]:
        yield

    # --- local half -------------------------------------------------------------------

    def add(self, response: Response) -> None:
        self._responses[response.id] = response
        self._by_request[(response.principal, response.request_id)] = response
        if response.conversation_id is not None and response.running:
            self._conversations[(response.principal, response.conversation_id)] = response

    def get(self, response_id: str) -> Response | None:
        return self._responses.get(response_id)

    def by_request(self, principal: str, request_id: str) -> Response | None:
        return self._by_request.get((principal, request_id))

    def busy(self, principal: str, conversation_id: str) -> bool:
        return (principal, conversation_id) in self._conversations

    def ended(self, response: Response) -> None:
        if response.conversation_id is not None:
            key = (response.principal, response.conversation_id)
            if self._conversations.get(key) is response:
                del self._conversations[key]

    def discard(self, response: Response) -> None:
        self.ended(response)
        if self._responses.get(response.id) is response:
            del self._responses[response.id]
        key = (response.principal, response.request_id)
        if self._by_request.get(key) is response:
            del self._by_request[key]

    def local(self) -> list[Response]:
        return list(self._responses.values())

    def publisher(self, response: Response) -> Publish | None:
        return None

    # --- shared half: nobody else to share with ---------------------------------------

    def check_available(self) -> None:
        return None

    async def claim(self, response: Response) -> RemoteRecord | None:
        return None

    async def lookup(
        self, principal: str, *, response_id: str | None = None, request_id: str | None = None
    ) -> RemoteRecord | None:
        return None

    async def lookup_conversation(
        self, principal: str, conversation_id: str
    ) -> RemoteRecord | None:
        return None

    async def events_after(self, record: RemoteRecord, last_seq: int) -> list[ResponseEvent] | None:
        return None

    async def last_seq(self, record: RemoteRecord) -> int:
        return -1

    async def follow(
        self, record: RemoteRecord, last_seq: int
    ) -> AsyncGenerator[ResponseEvent, None]:
        raise LookupError("the memory backend has no remote responses")
        yield  # pragma: no cover - makes this an async generator

    async def send(self, owner: str, control: Control) -> None:
        return None
