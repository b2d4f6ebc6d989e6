"""Browser origins: the allow-list check, and the hint naming the setting to change.

Shared by the CORS preflight (HTTP) and the WebSocket handshake, so a refused page
is told the same thing on both: which setting would let it in.
"""

from __future__ import annotations

SETTING = "GATEWAY_ALLOWED_ORIGINS"
MAX_SHOWN = 200  # an Origin header is the client's to make long


def listed(origin: str, allowed: list[str]) -> bool:
    return "*" in allowed or origin in allowed


def refused_hint(origin: str) -> str:
    """The message for a refused browser origin (shown to the page and logged)."""
    return (
        f"origin '{origin[:MAX_SHOWN]}' is not allowed: add it to {SETTING}"
        " (comma-separated origins, e.g. https://app.example.com)"
    )
