"""Scenario 1: streaming relay throughput and CPU per relayed token, WS and SSE paths.

Baseline: the same driver's ``direct`` mode (bare httpx reading the fake upstream
line by line); its CPU per token is the client process's own CPU time.
"""

from __future__ import annotations

from typing import Any

from bench import procs
from bench.config import Config
from bench.report import Row, Section

TOKENS = 200
PACED_MS = 20.0
_PATHS = (("ws", "WebSocket"), ("sse", "HTTP SSE"))
_CPU_BOUND = 2.0
_MERGE_BOUND = 2.0


def _series(cfg: Config, delay_ms: float, concurrencies: tuple[int, ...]) -> list[dict[str, Any]]:
    runs = []
    with (
        procs.fake_upstream(tokens=TOKENS, delay_ms=delay_ms) as fake,
        procs.gateway(fake.url) as gw,
    ):
        for concurrency in concurrencies:
            for mode in ("direct", "ws", "sse"):
                since = fake.last_request_id()
                result = procs.run_driver(
                    "load_relay",
                    {
                        "mode": mode,
                        "url": fake.url if mode == "direct" else gw.url,
                        "key": procs.CLIENT_KEY,
                        "concurrency": concurrency,
                        "warmup_s": cfg.warmup_s,
                        "measure_s": cfg.measure_s,
                        # Spread paced streams out, and have them all running when
                        # the window opens.
                        "stagger_s": cfg.warmup_s if delay_ms else 0.0,
                        "pids": {"gateway": gw.pid, "fake": fake.pid},
                    },
                )
                result["delay_ms"] = delay_ms
                result["left_running"] = fake.wait_quiet(since)
                runs.append(result)
    return runs


def _find(runs: list[dict[str, Any]], mode: str, concurrency: int) -> dict[str, Any]:
    return next(r for r in runs if r["mode"] == mode and r["concurrency"] == concurrency)


def _cpu(run: dict[str, Any], who: str) -> float | None:
    value = run["cpu_us_per_token"].get(who)
    return float(value) if value is not None else None


def run(cfg: Config) -> Section:
    unpaced = _series(cfg, 0.0, cfg.concurrencies)
    paced = _series(cfg, PACED_MS, (100,))
    rows: list[Row] = []
    # Targets first: CPU per token at concurrency 100, paced and unpaced.
    for label, runs in (("unpaced", unpaced), (f"paced {PACED_MS:.0f} ms/token", paced)):
        base = _find(runs, "direct", 100)
        for mode, name in _PATHS:
            gw = _find(runs, mode, 100)
            gateway_cpu, base_cpu = _cpu(gw, "gateway"), _cpu(base, "client")
            met = None
            if gateway_cpu is not None and base_cpu:
                met = gateway_cpu <= _CPU_BOUND * base_cpu
            rows.append(
                Row(
                    f"{name}: gateway CPU per relayed token, c=100, {label}",
                    gateway_cpu,
                    base_cpu,
                    "µs",
                    f"<= {_CPU_BOUND:.0f}x baseline",
                    met,
                )
            )
    top = max(cfg.concurrencies)
    ws_top = _find(unpaced, "ws", top)
    merge = ws_top["tokens_per_s"] / ws_top["frames_per_s"] if ws_top["frames_per_s"] else None
    rows.append(
        Row(
            f"WebSocket: delivered tokens/s ÷ frames/s, c={top}, unpaced",
            merge,
            None,
            "x",
            f">= {_MERGE_BOUND:.0f}",
            merge is not None and merge >= _MERGE_BOUND,
        )
    )
    # A run whose clients were closed on (a limit, a crash) measures nothing: say so as
    # a target, not only in a note (a flood close once left c=1 at 0 tokens/s unflagged).
    lost = sum(r["errors"] + len(r["worker_failures"]) for r in unpaced + paced)
    empty = sum(1 for r in unpaced + paced if not r["tokens"])
    rows.append(
        Row(
            "responses failed, clients lost or runs with no tokens, over all runs",
            lost + empty,
            None,
            "",
            "0",
            lost + empty == 0,
        )
    )
    # Context: throughput at every concurrency.
    for label, runs, concurrencies in (
        ("unpaced", unpaced, cfg.concurrencies),
        (f"paced {PACED_MS:.0f} ms", paced, (100,)),
    ):
        for concurrency in concurrencies:
            base = _find(runs, "direct", concurrency)
            for mode, name in _PATHS:
                gw = _find(runs, mode, concurrency)
                tag = f"c={concurrency}, {label}"
                rows.append(
                    Row(f"{name} tokens/s, {tag}", gw["tokens_per_s"], base["tokens_per_s"])
                )
                rows.append(
                    Row(f"{name} frames/s, {tag}", gw["frames_per_s"], base["frames_per_s"])
                )
                rows.append(
                    Row(
                        f"{name} gateway CPU µs/token, {tag}",
                        _cpu(gw, "gateway"),
                        _cpu(base, "client"),
                    )
                )
    leftovers = sum(r["left_running"] for r in unpaced + paced)
    errors = sum(r["errors"] for r in unpaced + paced)
    lost_workers = sum(len(r["worker_failures"]) for r in unpaced + paced)
    notes = [
        f"{TOKENS}-token responses back to back on every client; each run warms up "
        f"{cfg.warmup_s} s and measures {cfg.measure_s} s.",
        "Gateway CPU = user+system time of the gateway process (psutil) in the window ÷ tokens "
        "delivered to clients; baseline CPU = the direct client's own process CPU ÷ tokens read.",
        "Three processes (fake upstream, gateway, load driver) share the machine's cores, so "
        "tokens/s at saturation is bounded by whichever is busiest; the CPU per token is the "
        "figure that does not depend on that.",
        "WebSocket: one socket per concurrent response; frames = delta frames received "
        "(a merged frame carries several tokens); SSE: one event per token.",
        f"Upstream streams still running after a run ended: {leftovers}; "
        f"failed responses over all runs: {errors}; clients lost: {lost_workers}.",
    ]
    return Section(
        "relay",
        "1. Streaming relay throughput and cost",
        "a bare `httpx.AsyncClient` reading the fake upstream's SSE stream with `aiter_lines()` "
        "(same fake, same concurrency, same run).",
        rows,
        notes,
        raw={"unpaced": unpaced, "paced": paced},
    )
