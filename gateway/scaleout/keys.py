"""Every Redis key and channel the shared sessions use, in one place (see the README)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def __post_init__(self) -> None:
        # The writer sends a batch of events as one newline-separated string.
        if "\n" in self.prefix:
            raise ValueError("the Redis key prefix cannot hold a newline")

    def record(self, response_id: str) -> str:
        """HASH: who asked, who runs it, whether it ended. TTL: running TTL, then the window."""
        return f"{self.prefix}resp:{response_id}"

    def events(self, response_id: str) -> str:
        """STREAM: the response's events, entry id ``1-<seq>``, bounded length, same TTL."""
        return f"{self.prefix}events:{response_id}"

    def request(self, principal: str, request_id: str) -> str:
        """STRING: the response id claimed for a request id (idempotency), same TTL."""
        return f"{self.prefix}req:{principal}:{request_id}"

    def conversation(self, principal: str, conversation_id: str) -> str:
        """STRING: the response id last started in the conversation (busy while that one
        runs and its owner lives). TTL: running TTL, refreshed by the owner."""
        return f"{self.prefix}conv:{principal}:{conversation_id}"

    def lease(self, instance_id: str) -> str:
        """STRING: present while the instance lives (PX = owner lease, refreshed)."""
        return f"{self.prefix}instance:{instance_id}"

    def sockets(self, key: str) -> str:
        """ZSET: the client key's open sockets on every instance, scored with when each
        lapses (now + owner lease, re-scored by its instance). TTL: twice the lease."""
        return f"{self.prefix}sockets:{key}"

    def rate(self, key: str) -> str:
        """HASH: the client key's message token bucket. TTL: time to refill, + 1 s."""
        return f"{self.prefix}rate:{key}"

    def control(self, instance_id: str) -> str:
        """Pub/sub channel: cancel/attach/detach for responses the instance owns."""
        return f"{self.prefix}control:{instance_id}"
