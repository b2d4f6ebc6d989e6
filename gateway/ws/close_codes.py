"""Every WebSocket close code the endpoint sends, with why it is the right one.

Clients decide from the code alone whether to reconnect, back off or give up, so
each condition maps to exactly one code and no module invents its own.
"""

from __future__ import annotations

from typing import Final

# The client or the server ended the session on purpose; nothing to retry.
NORMAL: Final = 1000

# The client broke a rule that retrying the same way will break again: bad Origin,
# authentication lost after accept, or abuse (rate-limit violations, a flood). The
# socket's running responses are cancelled with it. Do not reconnect without
# changing something.
POLICY_VIOLATION: Final = 1008

# An inbound message exceeded ``max_message_bytes``. RFC 6455 reserves 1009 for
# exactly this, and browsers surface it unchanged.
MESSAGE_TOO_BIG: Final = 1009

# A bug in the gateway. The client may reconnect and resume.
INTERNAL_ERROR: Final = 1011

# The instance is restarting or draining (also what uvicorn sends on shutdown).
# Reconnect at once: the load balancer already routes new sockets elsewhere,
# and unfinished responses can be resumed there only if they finished in time.
SERVICE_RESTART: Final = 1012

# Too many sockets on this instance or for this client key. Reconnect with backoff.
TRY_AGAIN_LATER: Final = 1013

# The credential stopped being valid during the session (reserved: static client
# keys never expire). Reconnect with a fresh token, not the same one.
TOKEN_EXPIRED: Final = 4001

# Nothing arrived for ``idle_timeout_ms``: the client is gone or not pinging.
# A live client that sees this should send ``ping`` every ``heartbeat_interval_ms``.
IDLE_TIMEOUT: Final = 4008

# The client did not read fast enough: its outbox stayed over ``outbox_max_bytes``
# for ``outbox_drain_timeout_ms`` (or went over several times that at once). Its
# responses keep running for the resume window: reconnect and resume.
SLOW_CONSUMER: Final = 4013

# Why-strings sent as the close reason (must fit in 123 bytes).
REASONS: Final[dict[int, str]] = {
    NORMAL: "normal closure",
    POLICY_VIOLATION: "policy violation",
    MESSAGE_TOO_BIG: "message too big",
    INTERNAL_ERROR: "internal error",
    SERVICE_RESTART: "server restarting",
    TRY_AGAIN_LATER: "at capacity, try again later",
    TOKEN_EXPIRED: "token expired",
    IDLE_TIMEOUT: "idle timeout",
    SLOW_CONSUMER: "slow consumer",
}
