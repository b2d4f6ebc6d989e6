"""One :class:`Session` per WebSocket connection."""

from __future__ import annotations

import secrets

from sessions.response import Response
from sessions.sink import Sink


class Session:
    """A connected client: its principal, its socket sink and the responses attached to it.

    ``defaults`` is opaque to this package (the gateway keeps the session's default
    model/agent/params there). ``responses`` maps response id to every response
    currently attached to this session, running or finished-but-retained; it is
    maintained by the :class:`~sessions.manager.SessionManager`, do not mutate it.
    """

    __slots__ = ("closed", "defaults", "id", "principal", "responses", "sink")

    def __init__(
        self, principal: str, sink: Sink, defaults: dict[str, object] | None = None
    ) -> None:
        self.id = "sess_" + secrets.token_urlsafe(12)
        self.principal = principal
        self.sink = sink
        self.defaults: dict[str, object] = {} if defaults is None else defaults
        self.responses: dict[str, Response] = {}
        self.closed = False

    @property
    def running_count(self) -> int:
        """Responses attached here that have not ended yet."""
        return sum(1 for r in self.responses.values() if r.running)

    def __repr__(self) -> str:
        return f"Session({self.id!r}, responses={len(self.responses)}, closed={self.closed})"
