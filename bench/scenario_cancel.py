"""Scenario 3: cancel latency and orphaned upstream streams, at concurrency 1, 10 and 100.

Run twice. Paced at 20 ms/token (the latency scenario's upstream) it measures
how fast a Stop reaches the provider: the <= 20 ms p99 target. At 5 ms/token
(100 streams x 200 tokens/s: more than this 2-core machine relays, so the
gateway is saturated) it checks that Stop still stops the spend when the
gateway is busy: every upstream stream closed before it completes, none
orphaned; its latencies are reported for the record. Every response is stopped
after its 5th token; the fake reports when it saw each upstream connection
close. Baseline: the same client closing a stream it reads from the fake
directly, in the same run.

The gateway runs with its default message-rate limits here (the other scenarios
raise them): a socket that starts and stops an answer every ~30 ms goes over the
default rate for creates, which must pace its creates (the driver waits the
``retry_after_ms`` it is told) and never refuse a cancel. Each level sends about
the same number of cancels: ``rounds x 100 / concurrency`` rounds per client,
except concurrency 1, capped at ``SERIAL_CANCELS``: one cancel at a time takes
~100 ms at 20 ms/token, and 500 of them per mode took 3.5 minutes of ``make
bench``'s budget.
"""

from __future__ import annotations

from typing import Any

from bench import procs
from bench.config import Config
from bench.report import Row, Section
from gateway.settings import Settings

TOKENS = 200
# (pace in ms/token, label, whether the latency bound applies at this pace)
PACES = ((20.0, "paced 20 ms/token", True), (5.0, "busy, 5 ms/token", False))
AFTER = 5
CONCURRENCIES = (1, 10, 100)
P99_BOUND_MS = 20.0
SERIAL_CANCELS = 200  # at concurrency 1 (p99: the 2nd slowest)
_MODES = (
    ("ws", "WebSocket response.cancel"),
    ("sse", "HTTP SSE stream closed"),
    ("ws-close", "WebSocket socket closed (resume window 0)"),
)


# The defaults of the settings these variables set: procs.gateway_env raises them.
_DEFAULT_LIMITS = {
    "GATEWAY_MESSAGES_PER_SECOND": str(Settings.model_fields["messages_per_second"].default),
    "GATEWAY_MESSAGE_BURST": str(Settings.model_fields["message_burst"].default),
}


def _cancels(cfg: Config, concurrency: int) -> int:
    """How many cancels a level sends, per mode and pace."""
    cancels = cfg.cancel_rounds * 100
    return min(cancels, SERIAL_CANCELS) if concurrency == 1 else cancels


def _drive(
    cfg: Config,
    mode: str,
    target: procs.Server,
    fake: procs.Server,
    cores: frozenset[int] | None,
    concurrency: int,
) -> dict[str, Any]:
    since = fake.last_request_id()
    pids = {"fake": fake.pid} if target is fake else {"gateway": target.pid, "fake": fake.pid}
    return procs.run_driver(
        "load_cancel",
        {
            "mode": mode,
            "url": target.url,
            "fake_url": fake.url,
            "since": since,
            "key": procs.CLIENT_KEY,
            "concurrency": concurrency,
            "rounds": max(1, _cancels(cfg, concurrency) // concurrency),
            "after_tokens": AFTER,
            "pids": pids,
        },
        cores=cores,
    )


def _drive_all(
    cfg: Config, delay_ms: float, where: procs.Placement, concurrency: int
) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    load = where.load
    with procs.fake_upstream(tokens=TOKENS, delay_ms=delay_ms, lean=True, cores=load) as fake:
        runs["direct"] = _drive(cfg, "direct", fake, fake, load, concurrency)
        with procs.gateway(fake.url, _DEFAULT_LIMITS, cores=where.gateway) as gw:
            runs["ws"] = _drive(cfg, "ws", gw, fake, load, concurrency)
            runs["sse"] = _drive(cfg, "sse", gw, fake, load, concurrency)
        window_0 = {**_DEFAULT_LIMITS, "GATEWAY_RESUME_WINDOW_MS": "0"}
        with procs.gateway(fake.url, window_0, cores=where.gateway) as gw:
            runs["ws-close"] = _drive(cfg, "ws-close", gw, fake, load, concurrency)
    return runs


def run(cfg: Config) -> Section:
    rows: list[Row] = []
    notes: list[str] = []
    raw: dict[str, Any] = {}
    placement = procs.isolated()
    for delay_ms, pace, bounded in PACES:
        for concurrency in CONCURRENCIES:
            label = f"{pace}, c={concurrency}"
            runs = _drive_all(cfg, delay_ms, placement, concurrency)
            raw[label] = runs
            rows += _rows(runs, label, bounded)
            failures = {m: r["worker_failures"] for m, r in runs.items() if r["worker_failures"]}
            notes.append(f"Client-side failures, {label}: {failures or 'none'}.")
            limited = runs["ws"]["creates_rate_limited"] + runs["ws-close"]["creates_rate_limited"]
            notes.append(f"WebSocket creates paced by rate_limited, {label}: {limited}.")
    notes = [
        f"Concurrency {', '.join(map(str, CONCURRENCIES))}: each level sends "
        f"~{cfg.cancel_rounds * 100} cancels per mode and pace ({cfg.cancel_rounds} x 100 / c "
        f"rounds per client; at c=1 {_cancels(cfg, 1)}, one at a time); {TOKENS}-token "
        f"responses; each response stopped once {AFTER} tokens arrived. The gateway runs "
        "with its default message-rate limits "
        f"({_DEFAULT_LIMITS['GATEWAY_MESSAGES_PER_SECOND']}/s, burst "
        f"{_DEFAULT_LIMITS['GATEWAY_MESSAGE_BURST']}); a refused create is resent after its "
        "retry_after_ms, a cancel is never refused.",
        f"The <= {P99_BOUND_MS:g} ms bound is checked at 20 ms/token. At 5 ms/token the "
        "upstreams together send more tokens than this machine can relay (the gateway, the "
        "fake and the clients share 2 cores), so every process lags, the direct baseline "
        "included; there the check is that every stream is closed before it completes.",
        "Latency = the fake's `ended_at` for that request (when it saw the connection close) "
        "minus the client's `time.monotonic()` just before it sent the cancel / closed.",
        f"Orphaned = upstream streams still running {3:g} s after the clients finished.",
        f"Placement: {placement.describe()}. The upstream is the lean fake "
        "(`tests/fakes/lean_openai.py`), which records a hang-up in the callback that sees it; "
        "HTTP streams (direct and SSE) are read with the lean client of `bench/_lean_http.py` "
        "and hung up by cutting the connection.",
        *notes,
    ]
    return Section(
        "cancel",
        "3. Cancel latency",
        "the same client closing a stream read from the fake upstream directly.",
        rows,
        notes,
        raw=raw,
    )


def _rows(runs: dict[str, dict[str, Any]], label: str, bounded: bool) -> list[Row]:
    base = runs["direct"]["cancel_to_upstream_closed_ms"]
    rows: list[Row] = []
    for mode, mode_name in _MODES:
        name = f"{mode_name}, {label}"
        result = runs[mode]
        latency = result["cancel_to_upstream_closed_ms"]
        p99 = latency["p99"]
        rows.append(
            Row(
                f"{name}: cancel -> upstream closed p99",
                p99,
                base["p99"],
                "ms",
                f"<= {P99_BOUND_MS:g} ms" if bounded else "",
                (p99 is not None and p99 <= P99_BOUND_MS) if bounded else None,
                compare="added",
            )
        )
        rows.append(
            Row(
                f"{name}: upstream streams orphaned",
                result["orphaned"],
                runs["direct"]["orphaned"],
                target="0",
                met=result["orphaned"] == 0,
                compare="added",
            )
        )
        stopped = result["upstream_outcomes"].get("disconnected", 0)
        rows.append(
            Row(
                f"{name}: upstream closed before completing, of {result['cancelled']} cancelled",
                stopped,
                runs["direct"]["upstream_outcomes"].get("disconnected", 0),
                target="all",
                met=result["cancelled"] > 0 and stopped == result["cancelled"],
                compare="added",
            )
        )
        for pct in ("p50", "max"):
            rows.append(
                Row(
                    f"{name}: cancel -> upstream closed {pct}",
                    latency[pct],
                    base[pct],
                    "ms",
                    compare="added",
                )
            )
        rows.append(
            Row(
                f"{name}: upstream chunks sent after the cancel, p99",
                result["upstream_chunks_after_cancel"]["p99"],
                runs["direct"]["upstream_chunks_after_cancel"]["p99"],
                compare="added",
            )
        )
    return rows
