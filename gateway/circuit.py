"""Per-provider circuit breakers: stop hammering an upstream that keeps failing.

A provider that fails ``failure_threshold`` times in a row (connection refused,
5xx, timeouts: the retryable failures that say "the upstream is unwell", not a
bad request or a bad key) is *open* for ``open_s``: the router skips it at once
(to the next fallback target, or a retryable ``upstream_unavailable`` with
``retry_after_ms``) instead of adding load to an upstream that is down and making
every client wait for its timeouts. After ``open_s`` it is *half-open*: exactly
one request is let through as a trial; its success closes the circuit, its
failure opens it again. Nothing runs in the background: state changes happen
when requests arrive, against the injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gateway.errors import UpstreamError, UpstreamUnavailable
from gateway.settings import CircuitBreakerPolicy


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False


class CircuitBreakers:
    """One circuit per provider name."""

    def __init__(
        self, policy: CircuitBreakerPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    def state(self, provider: str) -> CircuitState:
        circuit = self._circuits.get(provider)
        if circuit is None or circuit.opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - circuit.opened_at < self._policy.open_s:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def states(self) -> dict[str, CircuitState]:
        return {name: self.state(name) for name in self._circuits}

    def admit(self, provider: str) -> None:
        """Raise :class:`UpstreamUnavailable` unless a request may go to ``provider`` now."""
        if not self._policy.enabled:
            return
        state = self.state(provider)
        if state is CircuitState.CLOSED:
            return
        circuit = self._circuits[provider]
        if state is CircuitState.HALF_OPEN and not circuit.trial_running:
            circuit.trial_running = True
            return
        assert circuit.opened_at is not None
        wait_s = max(0.0, circuit.opened_at + self._policy.open_s - self._clock())
        raise UpstreamUnavailable(
            f"{provider} is failing; requests to it are paused (circuit open)",
            provider=provider,
            retryable=True,
            retry_after_ms=max(1, int(wait_s * 1000)),
        )

    def succeeded(self, provider: str) -> None:
        circuit = self._circuits.get(provider)
        if circuit is not None:
            circuit.failures = 0
            circuit.opened_at = None
            circuit.trial_running = False

    def failed(self, provider: str, error: UpstreamError) -> None:
        """Count ``error`` against ``provider`` if it says the upstream is unwell."""
        if not self._policy.enabled or not _counts(error):
            self._end_trial(provider)
            return
        circuit = self._circuits.setdefault(provider, _Circuit())
        circuit.failures += 1
        if circuit.trial_running or circuit.failures >= self._policy.failure_threshold:
            circuit.opened_at = self._clock()
            circuit.trial_running = False

    def abandoned(self, provider: str) -> None:
        """The request was cancelled before it said anything about the upstream."""
        self._end_trial(provider)

    def _end_trial(self, provider: str) -> None:
        circuit = self._circuits.get(provider)
        if circuit is not None:
            circuit.trial_running = False


def _counts(error: UpstreamError) -> bool:
    # A 429 is the upstream protecting itself per key: it comes with its own wait.
    return error.retryable and error.upstream_status != 429
