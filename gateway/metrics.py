"""Prometheus metrics (``GET /metrics``): what an operator needs to see the bad day.

One :class:`Metrics` per app, with its own ``CollectorRegistry`` (no process-wide
default registry: two apps in one process, as in the tests, never share counts).

Two kinds of figures:

- **Events**, counted where they happen, once per request or per socket, never
  per token: a chat request's outcome, tokens, time to first token and duration
  come from its summary (:meth:`Metrics.observe_chat`, the one place every
  transport reports to); router retries, fallbacks and failed upstream attempts
  from the router; cancels, resumes and what a socket's outbox did from the
  WebSocket endpoint.
- **State**, read when Prometheus scrapes (:class:`_StateCollector`): open
  sockets, running responses, streamed HTTP answers in flight and each
  provider's circuit, so nothing has to keep a gauge in step on the hot path.

Labels are bounded sets: provider names, error codes, statuses, transports, and
the *requested* model name only when it resolved (unknown names never become
label values, so a client cannot grow the metric set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from gateway.circuit import CircuitState
from gateway.telemetry import ChatSummary

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_CANCEL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_CIRCUIT_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}

_M = TypeVar("_M", bound=MetricWrapperBase)


class _Children(Generic[_M]):
    """A labelled metric's children by their label values, kept in a plain dict.

    ``metric.labels(...)`` validates the values and takes a lock on every call
    (five calls per chat request); the label sets are bounded (see the module
    docstring), so each child is made once and then found by one lookup.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


@dataclass(frozen=True, slots=True)
class GatewayState:
    """Read at scrape time; each callable is cheap and never blocks."""

    open_sockets: Callable[[], int]
    running_responses: Callable[[], int]
    http_streams: Callable[[], int]
    circuits: Callable[[], dict[str, CircuitState]]
    loop_tasks: Callable[[], int]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = _Children(
            Counter(
                "gateway_chat_requests",
                "Chat requests by how they ended",
                ["transport", "status", "reason", "provider"],
                registry=r,
            )
        )
        self._tokens = _Children(
            Counter(
                "gateway_tokens",
                "Tokens reported by providers",
                ["direction", "provider", "model"],
                registry=r,
            )
        )
        self._ttft = _Children(
            Histogram(
                "gateway_time_to_first_token_seconds",
                "From request start to the first output event",
                ["transport", "provider"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            )
        )
        self._duration = _Children(
            Histogram(
                "gateway_request_duration_seconds",
                "From request start to its summary",
                ["transport", "provider"],
                buckets=_DURATION_BUCKETS,
                registry=r,
            )
        )
        self._upstream_errors = _Children(
            Counter(
                "gateway_upstream_errors",
                "Failed upstream attempts (retried or not) by provider and error code",
                ["provider", "code"],
                registry=r,
            )
        )
        self._retries = _Children(
            Counter(
                "gateway_upstream_retries", "Retries of the same target", ["provider"], registry=r
            )
        )
        self._fallbacks = _Children(
            Counter(
                "gateway_upstream_fallbacks",
                "Moves to the next target of a fallback chain",
                ["from_provider", "to_provider"],
                registry=r,
            )
        )
        self._cancels = _Children(
            Counter("gateway_cancels", "Answers stopped by their client", ["transport"], registry=r)
        )
        self._cancel_latency = _Children(
            Histogram(
                "gateway_cancel_latency_seconds",
                "From the client's Stop arriving to the upstream being cut off",
                ["transport"],
                buckets=_CANCEL_BUCKETS,
                registry=r,
            )
        )
        self._resumes = _Children(
            Counter(
                "gateway_resume_attempts", "response.resume requests", ["recovered"], registry=r
            )
        )
        self._outbox_frames = Counter(
            "gateway_ws_frames_sent", "WebSocket frames sent to clients", registry=r
        )
        self._outbox_merged = Counter(
            "gateway_ws_deltas_merged",
            "Text deltas merged into a frame already waiting (backpressure)",
            registry=r,
        )
        self._socket_closes = _Children(
            Counter(
                "gateway_ws_closes",
                "Ended WebSocket sessions by the server's close code ('client': the client closed)",
                ["code"],
                registry=r,
            )
        )

    def watch(self, state: GatewayState) -> None:
        """Report ``state`` at every scrape (once, when the app's services exist)."""
        self.registry.register(_StateCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- events ---------------------------------------------------------------------

    def observe_chat(self, summary: ChatSummary) -> None:
        """One finished chat request, from its summary line."""
        provider = summary.provider or "none"
        # The error's own code first: a session's ending reason (upstream_error) is
        # coarser, and HTTP, which has no session, would count the same failure apart.
        reason = summary.error_code or summary.extra.get("reason") or "none"
        self._requests(summary.transport, summary.status, str(reason), provider).inc()
        model = summary.target_model
        if model is not None:
            if summary.input_tokens:
                self._tokens("in", provider, model).inc(summary.input_tokens)
            if summary.output_tokens:
                self._tokens("out", provider, model).inc(summary.output_tokens)
        if summary.first_token_at is not None:
            ttft = summary.first_token_at - summary.started
            self._ttft(summary.transport, provider).observe(ttft)
        self._duration(summary.transport, provider).observe(summary.elapsed_s())

    def upstream_failed(self, provider: str, code: str) -> None:
        self._upstream_errors(provider, code).inc()

    def retried(self, provider: str) -> None:
        self._retries(provider).inc()

    def fell_back(self, from_provider: str, to_provider: str) -> None:
        self._fallbacks(from_provider, to_provider).inc()

    def cancelled(self, transport: str, latency_s: float) -> None:
        self._cancels(transport).inc()
        self._cancel_latency(transport).observe(latency_s)

    def resume_attempted(self, recovered: bool) -> None:
        self._resumes("true" if recovered else "false").inc()

    def socket_ended(self, *, server_code: int | None, frames_sent: int, merged: int) -> None:
        """A socket's end: the close code the server sent (``client`` when it did not)."""
        self._socket_closes("client" if server_code is None else str(server_code)).inc()
        self._outbox_frames.inc(frames_sent)
        self._outbox_merged.inc(merged)


class _StateCollector(Collector):
    def __init__(self, state: GatewayState) -> None:
        self._state = state

    def describe(self) -> Iterable[Metric]:
        return list(self._families(describe_only=True))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(describe_only=False))

    def _families(self, *, describe_only: bool) -> Iterator[Metric]:
        state = self._state
        for name, doc, read in (
            ("gateway_ws_sockets_open", "Open WebSocket sessions", state.open_sockets),
            (
                "gateway_responses_running",
                "Answers running in the session manager",
                state.running_responses,
            ),
            ("gateway_http_streams", "Streamed HTTP answers in flight", state.http_streams),
            (
                # A task that outlives its answer or socket shows as growth under
                # steady load (the benchmark's soak samples it).
                "gateway_event_loop_tasks",
                "asyncio tasks alive in the gateway's event loop",
                state.loop_tasks,
            ),
        ):
            family = GaugeMetricFamily(name, doc)
            if not describe_only:
                family.add_metric([], read())
            yield family
        circuits = GaugeMetricFamily(
            "gateway_circuit_state",
            "Each provider's circuit: 0 closed, 1 half-open (one trial), 2 open",
            labels=["provider"],
        )
        if not describe_only:
            for provider, circuit in sorted(state.circuits().items()):
                circuits.add_metric([provider], _CIRCUIT_VALUE[circuit])
        yield circuits
