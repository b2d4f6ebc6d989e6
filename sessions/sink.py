"""Where a response's events go while a socket is attached."""

from __future__ import annotations

from typing import Protocol

from sessions.events import SinkEvent


class Sink(Protocol):
    """The gateway's per-socket outbox.

    ``push`` is called on the per-token path, synchronously, from whatever task
    emits: it must not block, await or raise. It may merge deltas or decide the
    client is too slow (and then close the socket, which ends in
    ``SessionManager.close_session``).
    """

    def push(self, event: SinkEvent) -> None: ...
