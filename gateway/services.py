"""The objects one running gateway is made of, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from gateway.agents import Orchestrator
from gateway.auth import Authenticator
from gateway.inflight import InFlight
from gateway.lifecycle import Lifecycle
from gateway.limits import KeyLimits, LocalKeyLimits, OpenSocket, SocketRegistry
from gateway.metrics import Metrics
from gateway.probes import ProviderHealth
from gateway.providers import ProviderRegistry
from gateway.router import Router
from gateway.settings import Settings
from sessions import SessionManager


@dataclass
class Services:
    settings: Settings
    providers: ProviderRegistry
    router: Router
    orchestrator: Orchestrator
    lifecycle: Lifecycle
    auth: Authenticator
    # Built by the app's lifespan; None only for Services assembled by hand in tests.
    provider_health: ProviderHealth | None = None
    # Streamed HTTP chat responses under way; the drain waits for them.
    http_streams: InFlight = field(default_factory=InFlight)
    # WebSocket sessions: the manager runs in the lifespan; the registry counts sockets.
    sessions: SessionManager | None = None
    sockets: SocketRegistry[OpenSocket] | None = None
    # Counts per client key over all its sockets (every instance's, with Redis).
    key_limits: KeyLimits = field(default_factory=LocalKeyLimits)
    # Prometheus figures for /metrics: events counted where they happen, state at scrape.
    metrics: Metrics = field(default_factory=Metrics)


def services_of(conn: HTTPConnection) -> Services:
    """The services of the app serving this request or WebSocket."""
    services: Services = conn.app.state.services
    return services
