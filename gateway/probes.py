"""Provider reachability for ``/health/providers``: probed concurrently, cached briefly.

The cache keeps a busy monitoring setup from turning into probe traffic against
the upstreams: at most one probe round per ``health_probe_ttl_s``, and concurrent
callers share it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from gateway.errors import GatewayError
from gateway.providers import ProviderRegistry
from gateway.settings import Settings

_MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    configured: bool
    reachable: bool | None
    latency_ms: float | None
    last_error: str | None
    checked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "reachable": self.reachable,
            "latency_ms": self.latency_ms,
            "last_error": self.last_error,
            "checked_at": self.checked_at,
        }


class ProviderHealth:
    """Probes every configured provider; results are reused for ``ttl_s`` seconds."""

    def __init__(self, settings: Settings, providers: ProviderRegistry) -> None:
        self._providers = providers
        self._ttl_s = settings.health_probe_ttl_s
        self._timeout_s = settings.health_probe_timeout_s
        self._secrets = _secret_values(settings)
        self._lock = anyio.Lock()
        self._checked: float | None = None
        self._statuses: dict[str, ProviderStatus] = {}

    async def statuses(self) -> dict[str, ProviderStatus]:
        async with self._lock:  # concurrent callers wait for one shared probe round
            if self._checked is None or anyio.current_time() - self._checked >= self._ttl_s:
                self._statuses = await self._probe_all()
                self._checked = anyio.current_time()
            return self._statuses

    async def _probe_all(self) -> dict[str, ProviderStatus]:
        results: dict[str, ProviderStatus] = {
            name: ProviderStatus(False, None, None, None, None) for name in self._providers.known
        }

        async def probe(name: str) -> None:
            results[name] = await self._probe(name)

        async with anyio.create_task_group() as tg:
            for name in self._providers.configured:
                tg.start_soon(probe, name)
        return results

    async def _probe(self, name: str) -> ProviderStatus:
        started = time.perf_counter()
        error: str | None = None
        try:
            with anyio.fail_after(self._timeout_s):
                await self._providers.get(name).probe()
        except TimeoutError:
            error = f"no answer within {self._timeout_s:g} s"
        except GatewayError as exc:
            error = exc.message
        except Exception as exc:  # a broken adapter must not break the health page
            error = f"probe failed: {type(exc).__name__}"
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        checked_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if error is None:
            return ProviderStatus(True, True, latency_ms, None, checked_at)
        return ProviderStatus(True, False, latency_ms, self._redact(error), checked_at)

    def _redact(self, text: str) -> str:
        # Adapters keep keys out of their messages; this is the belt to those braces.
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text[:_MAX_ERROR_CHARS]


def _secret_values(settings: Settings) -> tuple[str, ...]:
    values = [settings.openai_api_key, settings.anthropic_api_key, settings.admin_token]
    values.extend(settings.client_keys)
    # Very short "secrets" would redact ordinary words; real keys are long.
    return tuple(
        v.get_secret_value() for v in values if v is not None and len(v.get_secret_value()) >= 8
    )
