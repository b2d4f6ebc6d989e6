"""Where a response's events go while a socket is attached."""

from __future__ import annotations

from typing import Protocol

from sessions.events import SinkEvent


class Sink(Protocol):
    """The gateway's per-socket outbox.

    ``push`` is called on the per-token path, synchronously, from whatever task
    emits (a response's producer, or the manager's): it must not block, await or
    raise, and it must not re-enter the manager except to close the session. What
    it may do:

    - queue the event, and merge a delta into the one queued before it;
    - decide the client is too slow and close the socket (which ends in
      ``SessionManager.close_session``);
    - **start the socket send itself, from the pushing task**: the gateway's outbox
      hands the first delta of an event-loop turn to the server's ``send`` at once
      when its writer is idle (it steps the send coroutine once, synchronously; a
      send that would suspend is finished by the writer task). So a push may do
      socket I/O -- a non-blocking write -- but never waits for it and never
      raises its failure: the writer task raises it.
    """

    def push(self, event: SinkEvent) -> None: ...
