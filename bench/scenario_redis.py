"""Scenario 6: the Redis session backend (issue #15) against the in-memory one, same run.

Two gateways over one paced upstream (20 ms/token, the latency scenario's lean
fake and placement): one with ``GATEWAY_SESSIONS_BACKEND=memory``, one with
``redis`` against a throwaway ``redis-server`` this scenario starts on a free
port. WebSocket relay at concurrency 100, measured in interleaved rounds (the
order alternating) whose samples are pooled, as scenario 2 does, so both
backends see the same drift of the machine. Figures: tokens/s, gateway CPU per
relayed token (redis-server's own CPU separately), the Redis round trips per
token (read events Redis processed: one per pipeline the gateway sent), and
per-token latency (fake send -> client receive) of one backend against the
other. Then the resume scenario's driver on the in-memory gateway, on the Redis
one (the replay comes from the instance's own memory) and across two Redis
instances (created on one, resumed on the other: the replay comes from Redis).
"""

from __future__ import annotations

from typing import Any

from bench import procs, scenario_resume
from bench.config import Config
from bench.report import Row, Section
from bench.scenario_latency import driver_args, pooled

TOKENS = 200
DELAY_MS = 20.0
CONCURRENCY = 100
CPU_BOUND = 1.5  # x the in-memory gateway's CPU per token
ADDED_P99_BOUND_MS = 5.0
_BACKENDS = ("memory", "redis")


def _redis_env(redis: procs.Server) -> dict[str, str]:
    return {"GATEWAY_SESSIONS_BACKEND": "redis", "GATEWAY_REDIS_URL": redis.url}


def per_token_us(run: dict[str, Any], who: str) -> float | None:
    """CPU µs of process ``who`` per token delivered, over a pooled run."""
    tokens = run["tokens"]
    return run["cpu_s"][who] / tokens * 1e6 if tokens else None


def _relay(cfg: Config, placement: procs.Placement) -> dict[str, dict[str, Any]]:
    load = placement.load
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in _BACKENDS}
    with (
        procs.redis_server(cores=load) as redis,
        procs.fake_upstream(
            tokens=TOKENS, delay_ms=DELAY_MS, stamp=True, lean=True, cores=load
        ) as fake,
        procs.gateway(fake.url, cores=placement.gateway) as memory,
        procs.gateway(fake.url, _redis_env(redis), cores=placement.gateway) as shared,
    ):
        gateways = {"memory": memory, "redis": shared}
        for round_ in range(cfg.redis_rounds):
            for name in _BACKENDS[round_ % 2 :] + _BACKENDS[: round_ % 2]:
                gw = gateways[name]
                args = driver_args(
                    "ws",
                    gw,
                    gw,
                    fake,
                    concurrency=CONCURRENCY,
                    tokens=TOKENS,
                    warmup_s=cfg.warmup_s,
                    measure_s=cfg.measure_s,
                )
                args["pids"]["redis"] = redis.pid
                args["redis_url"] = redis.url
                since = fake.last_request_id()
                result = procs.run_driver("load_relay", args, cores=load)
                result["left_running"] = fake.wait_quiet(since)
                rounds[name].append(result)
    runs = {name: pooled("ws", CONCURRENCY, TOKENS, rounds[name]) for name in _BACKENDS}
    for name in _BACKENDS:
        runs[name]["redis"] = {
            key: sum(r["redis"][key] for r in rounds[name]) for key in rounds[name][0]["redis"]
        }
    return runs


def _resume(cfg: Config) -> dict[str, dict[str, Any]]:
    results = {}
    args = {"key": procs.CLIENT_KEY, "rounds": cfg.resume_rounds}
    with (
        procs.redis_server() as redis,
        procs.fake_upstream(tokens=scenario_resume.EVENTS) as fake,
        procs.gateway(fake.url) as memory,
        procs.gateway(fake.url, _redis_env(redis)) as first,
        procs.gateway(fake.url, _redis_env(redis)) as second,
    ):
        results["memory"] = procs.run_driver("load_resume", {**args, "url": memory.url})
        results["redis"] = procs.run_driver("load_resume", {**args, "url": first.url})
        results["redis, other instance"] = procs.run_driver(
            "load_resume", {**args, "url": first.url, "resume_url": second.url}
        )
    return results


def _relay_rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    memory, redis = runs["memory"], runs["redis"]
    tag = f"c={CONCURRENCY}, paced {DELAY_MS:.0f} ms/token"
    gw_cpu, base_cpu = per_token_us(redis, "gateway"), per_token_us(memory, "gateway")
    p99, base_p99 = redis["token_latency_ms"]["p99"], memory["token_latency_ms"]["p99"]
    rows = [
        Row(
            f"WebSocket, Redis sessions: gateway CPU per relayed token, {tag}",
            gw_cpu,
            base_cpu,
            "µs",
            f"<= {CPU_BOUND:g}x in-memory",
            gw_cpu is not None and base_cpu is not None and gw_cpu <= CPU_BOUND * base_cpu,
        ),
        Row(
            f"WebSocket, Redis sessions: added per-token latency p99, {tag}",
            p99,
            base_p99,
            "ms",
            f"added <= {ADDED_P99_BOUND_MS:g} ms",
            p99 is not None and base_p99 is not None and p99 - base_p99 <= ADDED_P99_BOUND_MS,
            compare="added",
        ),
        Row(
            f"WebSocket tokens/s, {tag}",
            redis["tokens"] / redis["elapsed_s"],
            memory["tokens"] / memory["elapsed_s"],
        ),
        Row(
            f"redis-server CPU per relayed token, {tag}",
            per_token_us(redis, "redis"),
            per_token_us(memory, "redis"),
            "µs",
        ),
    ]
    both = [
        (per_token_us(run, "gateway") or 0.0) + (per_token_us(run, "redis") or 0.0)
        for run in (redis, memory)
    ]
    rows.append(Row(f"gateway + redis-server CPU per relayed token, {tag}", *both, "µs"))
    for key, figure in (
        ("total_reads_processed", "round trips"),
        ("total_commands_processed", "commands"),
    ):
        per_100 = [
            run["redis"][key] / run["tokens"] * 100 if run["tokens"] else None
            for run in (redis, memory)
        ]
        rows.append(Row(f"Redis {figure} per 100 relayed tokens, {tag}", *per_100))
    for figure, key, pct in (
        ("per-token latency p50", "token_latency_ms", "p50"),
        ("time to first token p50", "ttft_ms", "p50"),
        ("time to first token p99", "ttft_ms", "p99"),
        ("token inter-arrival p99", "gap_ms", "p99"),
    ):
        rows.append(_added(f"WebSocket, Redis sessions: {figure}, {tag}", redis, memory, key, pct))
    return rows


def _added(figure: str, run: dict[str, Any], base: dict[str, Any], key: str, pct: str) -> Row:
    """A latency row of one backend's run against the in-memory one's (no target)."""
    return Row(figure, run[key][pct], base[key][pct], "ms", compare="added")


def _resume_rows(results: dict[str, dict[str, Any]]) -> list[Row]:
    base = results["memory"]
    rows = []
    for name in ("redis", "redis, other instance"):
        result = results[name]
        for figure, key in (
            ("resume -> first replayed frame", "first_replayed_frame_ms"),
            ("resume -> replayed response.done (whole replay)", "replay_done_ms"),
        ):
            for pct in ("p50", "p99"):
                rows.append(_added(f"Resume, {name}: {figure} {pct}", result, base, key, pct))
    return rows


def run(cfg: Config) -> Section:
    placement = procs.isolated()
    relay = _relay(cfg, placement)
    resume = _resume(cfg)
    rows = _relay_rows(relay) + _resume_rows(resume)
    failures = {
        name: run["worker_failures"] for name, run in relay.items() if run["worker_failures"]
    }
    resume_failures = {name: r["failures"] for name, r in resume.items() if r["failures"]}
    samples = ", ".join(
        f"{name}: {run['token_latency_ms']['n']} tokens, {run['ttft_ms']['n']} first tokens"
        for name, run in relay.items()
    )
    notes = [
        f"Relay: {TOKENS}-token responses back to back on {CONCURRENCY} WebSocket clients over "
        f"a fake upstream paced at {DELAY_MS:.0f} ms/token; {cfg.redis_rounds} rounds per "
        f"backend of {cfg.measure_s:g} s each (after a {cfg.warmup_s:g} s warm-up), the order "
        "alternating, samples pooled. Both gateways run for the whole scenario; the idle one "
        "costs next to nothing.",
        f"Placement: {placement.describe()}; redis-server runs beside the fake and the "
        "drivers, as a separate machine's Redis would take no CPU from the gateway. It is a "
        "throwaway `redis-server` on a free loopback port, without persistence (no AOF, no "
        "snapshots).",
        "Gateway CPU per token = user+system CPU of the gateway process in the window ÷ "
        "tokens the clients received; redis-server's is measured alike and reported apart. "
        "Round trips = Redis's `total_reads_processed` in the window (one read event per "
        "batch of commands a client sent): below 100 per 100 tokens means the gateway "
        "batches its writes (one pipeline per batch of events, not a round trip per token).",
        "Per-token latency: the fake's send time (stamped into the token) -> client receive; "
        f"added = Redis backend minus in-memory backend. Samples: {samples}.",
        f"Resume: the resume scenario's driver ({cfg.resume_rounds} rounds of a finished "
        f"{scenario_resume.EVENTS}-token response resumed with `last_seq: 0` on a new socket), "
        "on the in-memory gateway (the baseline column), on a Redis-backed one (its own "
        "memory still holds the response, so this is the local path), and created on one "
        "Redis-backed instance, resumed on another (replayed from the Redis stream).",
        f"Upstream streams left running: {sum(r['left_running'] for r in relay.values())}; "
        f"failed responses: {sum(r['errors'] for r in relay.values())}; client failures: "
        f"{failures or 'none'}; resume failures: {resume_failures or 'none'}.",
    ]
    return Section(
        "redis",
        "6. Redis session backend",
        "the same gateway with the in-memory session backend, same run "
        "(interleaved rounds for the relay).",
        rows,
        notes,
        raw={"relay": relay, "resume": resume},
    )
