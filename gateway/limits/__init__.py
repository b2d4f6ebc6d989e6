"""Limits on what clients hold and send: open sockets, message rates, per-key counts.

Plain objects with an owner (the app's services, one socket), used by the WebSocket
endpoint and implemented across instances by :mod:`gateway.scaleout.limits`.
"""

from gateway.limits.per_key import KeyLimits, LocalKeyLimits
from gateway.limits.rate import TokenBucket
from gateway.limits.sockets import OpenSocket, SocketRegistry

__all__ = ["KeyLimits", "LocalKeyLimits", "OpenSocket", "SocketRegistry", "TokenBucket"]
