"""Scenario 2: latency the gateway adds, over a paced upstream (20 ms/token).

The fake stamps every token with its send time (``--stamp-tokens``), so besides
time to first token the driver measures each token's delivery latency (fake send
-> client receive). "Added" = gateway path minus the direct path, same run.
"""

from __future__ import annotations

import os
from typing import Any

from bench import procs, wakeup
from bench.config import Config
from bench.report import Row, Section
from bench.stats import summary

DELAY_MS = 20.0
# (concurrency, tokens per response): 200-token answers as in the relay scenario; at
# concurrency 1 shorter ones, so that the window holds enough first tokens.
_LOADS = ((1, 20), (100, 200))
_PATHS = (("ws", "WebSocket"), ("sse", "HTTP SSE"))
_MODES = ("direct", "ws", "sse")
# (figure, key, percentile, bound in ms): targets apply at concurrency 100.
_TARGETS = (
    ("added time to first token p50", "ttft_ms", "p50", 2.0),
    ("added time to first token p99", "ttft_ms", "p99", 10.0),
    ("added per-token latency p99", "token_latency_ms", "p99", 1.0),
)


def driver_args(
    mode: str,
    target: procs.Server,
    gw: procs.Server,
    fake: procs.Server,
    *,
    concurrency: int,
    tokens: int,
    warmup_s: float,
    measure_s: float,
) -> dict[str, Any]:
    """The ``load_relay`` arguments of one latency measurement (``mode``: direct, ws, sse)."""
    return {
        "mode": mode,
        "client": "lean",
        "url": target.url,
        "key": procs.CLIENT_KEY,
        "concurrency": concurrency,
        "warmup_s": warmup_s,
        "measure_s": measure_s,
        "stagger_s": min(warmup_s, tokens * DELAY_MS / 1000),
        "stamp": True,
        "samples": True,
        "pids": {"gateway": gw.pid, "fake": fake.pid},
    }


def _round(
    cfg: Config,
    fake: procs.Server,
    gw: procs.Server,
    placement: procs.Placement,
    concurrency: int,
    tokens: int,
    round_: int,
) -> dict[str, dict[str, Any]]:
    """One measurement per mode, the order rotated each round."""
    results = {}
    for mode in _MODES[round_ % 3 :] + _MODES[: round_ % 3]:
        since = fake.last_request_id()
        result = procs.run_driver(
            "load_relay",
            driver_args(
                mode,
                fake if mode == "direct" else gw,
                gw,
                fake,
                concurrency=concurrency,
                tokens=tokens,
                warmup_s=cfg.warmup_s,
                measure_s=cfg.latency_measure_s / cfg.latency_rounds,
            ),
            cores=placement.load,
        )
        result["left_running"] = fake.wait_quiet(since)
        results[mode] = result
    return results


def pooled(
    mode: str, concurrency: int, tokens: int, results: list[dict[str, Any]]
) -> dict[str, Any]:
    """One mode's rounds as one run: samples pooled, counts summed."""
    merged: dict[str, Any] = {
        "mode": mode,
        "concurrency": concurrency,
        "tokens_per_response": tokens,
        "rounds": len(results),
        "left_running": sum(r["left_running"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "worker_failures": [f for r in results for f in r["worker_failures"]][:5],
        "cpu_us_per_token": [r["cpu_us_per_token"] for r in results],
        "tokens": sum(r["tokens"] for r in results),
        "elapsed_s": sum(r["elapsed_s"] for r in results),
        "cpu_s": {name: sum(r["cpu_s"][name] for r in results) for name in results[0]["cpu_s"]},
    }
    for key in ("ttft_ms", "token_latency_ms", "gap_ms"):
        merged[key] = summary([x for r in results for x in r["samples"][key]])
    return merged


def run(cfg: Config) -> Section:
    runs: list[dict[str, Any]] = []
    placement = procs.isolated()
    cores = sorted(os.sched_getaffinity(0))
    machine_before = wakeup.describe(cores)
    for concurrency, tokens in _LOADS:
        with (
            procs.fake_upstream(
                tokens=tokens, delay_ms=DELAY_MS, stamp=True, lean=True, cores=placement.load
            ) as fake,
            procs.gateway(fake.url, cores=placement.gateway) as gw,
        ):
            rounds = [
                _round(cfg, fake, gw, placement, concurrency, tokens, round_)
                for round_ in range(cfg.latency_rounds)
            ]
        for mode in _MODES:
            runs.append(pooled(mode, concurrency, tokens, [r[mode] for r in rounds]))
    machine_after = wakeup.describe(cores)

    def find(mode: str, concurrency: int) -> dict[str, Any]:
        return next(r for r in runs if r["mode"] == mode and r["concurrency"] == concurrency)

    rows: list[Row] = []
    for concurrency in (100, 1):
        base = find("direct", concurrency)
        for mode, name in _PATHS:
            gw_run = find(mode, concurrency)
            for figure, key, pct, bound in _TARGETS:
                value, baseline = gw_run[key][pct], base[key][pct]
                met = None
                if concurrency == 100 and value is not None and baseline is not None:
                    met = value - baseline <= bound
                rows.append(
                    Row(
                        f"{name}: {figure}, c={concurrency}",
                        value,
                        baseline,
                        "ms",
                        f"added <= {bound:g} ms" if concurrency == 100 else "",
                        met,
                        compare="added",
                    )
                )
            for pct in ("p50", "p99"):
                rows.append(
                    Row(
                        f"{name}: token inter-arrival {pct}, c={concurrency}",
                        gw_run["gap_ms"][pct],
                        base["gap_ms"][pct],
                        "ms",
                        compare="added",
                    )
                )
    samples = ", ".join(
        f"{r['mode']} c={r['concurrency']}: {r['ttft_ms']['n']} first tokens, "
        f"{r['token_latency_ms']['n']} tokens"
        for r in runs
    )
    notes = [
        f"Fake upstream paced at {DELAY_MS:.0f} ms/token; responses back to back, "
        + ", ".join(f"{t} tokens each at c={c}" for c, t in _LOADS)
        + f"; client starts staggered. {cfg.latency_measure_s:g} s measured per path, in "
        f"{cfg.latency_rounds} interleaved rounds (direct, WebSocket, SSE, the order rotated "
        "each round, each run after its own warm-up) whose samples are pooled, so that the "
        "baseline and the gateway paths see the same drift of the machine. The gateway "
        "and its upstream fake are restarted per concurrency.",
        f"Placement: {placement.describe()}. The upstream is the lean fake "
        "(`tests/fakes/lean_openai.py`, the same bytes as the Starlette fake); HTTP clients "
        "(direct and SSE) are the lean client of `bench/_lean_http.py`, WebSocket clients "
        "the lean client of `bench/_lean_ws.py`.",
        "Time to first token: client sends the request -> first content token arrives. "
        "Per-token latency: the fake's send time (stamped into the token) -> client receive; "
        "both clocks are CLOCK_MONOTONIC of one machine.",
        "Inter-arrival: gap between consecutive token-carrying frames of a response at the "
        "client (a merged WebSocket frame counts once).",
        f"Samples: {samples}.",
        f"The machine's own wake-up latency (`bench/wakeup.py`), before these runs: "
        f"{machine_before}; after: {machine_after}. Every relayed token costs the gateway "
        "path two such wake-ups where the direct path has one, and on a virtual machine "
        "they drift with the host's load.",
    ]
    return Section(
        "latency",
        "2. Added latency",
        "the same lean HTTP client reading the fake upstream directly, same run.",
        rows,
        notes,
        raw=runs,
    )
