"""The sessions package's own exceptions; the gateway maps each to one wire code."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of everything :mod:`sessions` raises on purpose."""


class DuplicateRequest(SessionError):
    """``request_id`` names a response already attached to this very session."""


class ReplayUnavailable(DuplicateRequest):
    """``request_id`` is known, but its early events are gone, so it cannot be replayed whole.

    A subclass of :class:`DuplicateRequest` so that mapping the base covers it; the
    client should use ``response.resume`` with the events it has.
    """


class TooManyResponses(SessionError):
    """The session already runs ``max_concurrent_responses`` responses."""


class ConversationBusy(SessionError):
    """The principal already has a running response for this ``conversation_id``."""


class UnknownResponse(SessionError):
    """No such response for this principal (unknown, forgotten, or someone else's)."""


class Draining(SessionError):
    """The manager is draining: new responses are refused."""


class SessionClosed(SessionError):
    """The session was closed; it can start nothing new."""


class BackendUnavailable(SessionError):
    """The shared session store cannot be reached: nothing new can start. Retry later;
    responses already running go on."""
