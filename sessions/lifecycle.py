"""A response's lifecycle: its states and the one table of allowed transitions.

Attachment to a socket is not part of the lifecycle: a response in any state may
be attached to a session or detached from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class State(StrEnum):
    RUNNING = "running"
    """No ``Done`` yet: the producer (or, for a mirror, the owning instance) streams."""
    ENDED = "ended"
    """The one ``Done`` was emitted; still retained (resumable, idempotent) for the window."""
    FORGOTTEN = "forgotten"
    """No longer known to the manager: nothing can attach to it any more."""


TRANSITIONS: Final[Mapping[State, frozenset[State]]] = {
    State.RUNNING: frozenset({State.ENDED, State.FORGOTTEN}),
    # ENDED -> FORGOTTEN when the retention window passes (or at shutdown).
    State.ENDED: frozenset({State.FORGOTTEN}),
    State.FORGOTTEN: frozenset(),
}
"""Every allowed move. RUNNING -> FORGOTTEN only happens to a mirror (a response
followed from another instance, which keeps running there) and at shutdown."""


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the manager, never a client's doing."""


def check(current: State, target: State) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"{current} -> {target}")
