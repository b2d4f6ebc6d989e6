"""Scenario 4: idle authenticated sockets: resident memory per socket, time to accept.

Baseline: :mod:`bench.floor_ws`, a bare Starlette endpoint under the same uvicorn
options, driven identically. RSS is read from the server process (psutil) once
each stage is fully open and has settled; per-socket cost is the growth over a
10-socket warm stage, divided by the sockets added.
"""

from __future__ import annotations

import time
from typing import Any

from bench import procs
from bench.config import Config
from bench.report import Row, Section

WARM = 10
KIB_BOUND = 50.0
_SETTLE_S = 1.0


def _stages(server: procs.Server, path: str, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    stages = []
    args = {"url": server.url, "path": path, "key": procs.CLIENT_KEY, "counts": [WARM, *counts]}
    with procs.interactive_driver("load_idle", args) as driver:
        for _ in range(len(counts) + 1):
            stage = driver.read()
            time.sleep(_SETTLE_S)
            stage["rss"] = server.rss()
            stages.append(stage)
            driver.proceed()
        driver.read()  # the final result: everything closed
    warm = stages[0]
    for stage in stages[1:]:
        added = stage["open"] - warm["open"]
        stage["kib_per_socket"] = (stage["rss"] - warm["rss"]) / added / 1024 if added else None
    return stages


def run(cfg: Config) -> Section:
    counts = cfg.idle_counts
    with procs.floor_server() as floor:
        base = _stages(floor, "/ws", counts)
    with procs.fake_upstream(tokens=1) as fake, procs.gateway(fake.url) as gw:
        ours = _stages(gw, "/api/v1/ws", counts)
    rows: list[Row] = []
    for index in range(1, len(ours)):
        stage, floor_stage, before = ours[index], base[index], ours[index - 1]
        n = stage["open"]
        kib = stage["kib_per_socket"]
        rows.append(
            Row(
                f"resident memory per idle socket, {n:,} open",
                kib,
                floor_stage["kib_per_socket"],
                "KiB",
                f"<= {KIB_BOUND:g} KiB",
                kib is not None and kib <= KIB_BOUND,
            )
        )
        rows.append(
            Row(
                f"time to accept {n - before['open']:,} more sockets (to {n:,})",
                stage["accept_s"],
                floor_stage["accept_s"],
                "s",
            )
        )
        rows.append(
            Row(
                f"server RSS with {n:,} idle sockets",
                stage["rss"] / 2**20,
                floor_stage["rss"] / 2**20,
                "MiB",
            )
        )
    top = ours[-1]
    rows.append(
        Row(
            f"sockets held by one process (of {counts[-1]:,})",
            top["open"],
            base[-1]["open"],
            target=f"{max(counts):,}" if not cfg.quick else "",
            met=(top["open"] == 10_000 and not top["failed"]) if not cfg.quick else None,
        )
    )
    notes = [
        "Sockets authenticate with `Authorization: Bearer <client key>`, offer "
        "`chat-gateway.v1`, and wait for their first frame; no pings, no deflate.",
        f"Handshakes are opened 200 at a time by one driver process; RSS is read {_SETTLE_S:g} s "
        "after a stage is fully open. Per-socket = (RSS at N - RSS at the 10-socket warm stage) "
        "/ (N - 10).",
        f"Failures: gateway {[s['failed'] for s in ours if s['failed']] or 'none'}, "
        f"floor {[s['failed'] for s in base if s['failed']] or 'none'}.",
    ]
    return Section(
        "idle",
        "4. Idle sockets",
        "a bare Starlette WebSocket endpoint (`bench/floor_ws.py`) under the gateway's uvicorn "
        "options, same driver.",
        rows,
        notes,
        raw={"gateway": ours, "floor": base},
    )
