"""Where the manager keeps responses: the :class:`Backend` interface.

Two halves. The *local* half (synchronous) indexes the :class:`Response` objects
of this process -- the ones it owns (its producers run here) and, with a shared
backend, *mirrors* of responses owned elsewhere. The *shared* half (async) is
what other instances see: idempotency claims, the event log, the control
channel to a response's owner. :class:`~sessions.memory.MemoryBackend` is the
single-process implementation (its shared half has nobody to share with); a
shared one (the gateway's Redis backend) implements the same interface.

The manager never suspends on the local half, so attach + replay of a local
response stays free of gaps and duplicates; it only awaits the shared half when
the local one does not know the answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sessions.events import ResponseEvent, ResponseMeta
from sessions.response import Publish, Response


class ControlOp(StrEnum):
    CANCEL = "cancel"
    """Stop the response (``reason`` says why); the owner closes the upstream."""
    ATTACH = "attach"
    """A session on another instance follows it now: no detach window runs."""
    DETACH = "detach"
    """That session went away: the detach window may start."""


@dataclass(frozen=True, slots=True)
class Control:
    """A message for the instance that owns ``response_id``."""

    op: ControlOp
    response_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteRecord:
    """What the shared half knows of a response another instance owns."""

    response_id: str
    request_id: str
    principal: str
    epoch: int
    meta: ResponseMeta
    conversation_id: str | None
    owner: str
    ended: bool


class Backend(Protocol):
    """The manager's storage. See the module docstring for the two halves."""

    shared: bool
    """False: the shared half never finds anything (one process)."""

    @property
    def instance_id(self) -> str: ...

    @property
    def available(self) -> bool:
        """The shared half answered when last asked (readiness reports it)."""
        ...

    def running(self, on_control: Callable[[Control], None]) -> AbstractAsyncContextManager[None]:
        """Connect and run the backend's own tasks; ``on_control`` gets messages for
        responses owned here (called synchronously, in the event loop)."""
        ...

    # --- local half -------------------------------------------------------------------

    def add(self, response: Response) -> None:
        """Index a new local response (owned or mirror)."""
        ...

    def get(self, response_id: str) -> Response | None: ...

    def by_request(self, principal: str, request_id: str) -> Response | None: ...

    def busy(self, principal: str, conversation_id: str) -> bool:
        """A local response of this conversation is running."""
        ...

    def ended(self, response: Response) -> None:
        """``response`` emitted its ``Done``: free its conversation."""
        ...

    def discard(self, response: Response) -> None:
        """Drop ``response`` from the local index (idempotent)."""
        ...

    def local(self) -> list[Response]:
        """Every locally indexed response."""
        ...

    def publisher(self, response: Response) -> Publish | None:
        """Where an owned response's events go besides its buffer (``None``: nowhere)."""
        ...

    # --- shared half -------------------------------------------------------------------

    def check_available(self) -> None:
        """Raise :class:`~sessions.errors.BackendUnavailable` if new responses cannot
        be recorded now."""
        ...

    async def claim(self, response: Response) -> RemoteRecord | None:
        """Record ``response`` as the one for its ``(principal, request_id)``.

        ``None``: claimed (the response is now known to every instance). Otherwise
        the record of the response that already holds the claim. Raises
        :class:`~sessions.errors.BackendUnavailable`, or
        :class:`~sessions.errors.ConversationBusy` when another instance runs a
        response of ``response.conversation_id``.
        """
        ...

    async def lookup(
        self, principal: str, *, response_id: str | None = None, request_id: str | None = None
    ) -> RemoteRecord | None:
        """A response another instance owns, by id or request id; ``None`` if unknown."""
        ...

    async def lookup_conversation(
        self, principal: str, conversation_id: str
    ) -> RemoteRecord | None:
        """The running response of ``conversation_id`` another instance owns, if any.

        A shared backend also refuses, in :meth:`claim`, a second running response
        of one conversation across instances (:class:`~sessions.errors.ConversationBusy`).
        """
        ...

    async def events_after(self, record: RemoteRecord, last_seq: int) -> list[ResponseEvent] | None:
        """Every logged event with ``seq > last_seq``; ``None`` if some are gone."""
        ...

    async def last_seq(self, record: RemoteRecord) -> int:
        """Seq of the newest logged event of ``record`` (-1 if none)."""
        ...

    def follow(self, record: RemoteRecord, last_seq: int) -> AsyncGenerator[ResponseEvent, None]:
        """Live events after ``last_seq`` until the ``Done``. If the owner dies first,
        ends with a ``Done`` (``failed``/``owner_lost``) the backend logs for everyone."""
        ...

    async def send(self, owner: str, control: Control) -> None:
        """Deliver ``control`` to instance ``owner`` (best effort)."""
        ...
