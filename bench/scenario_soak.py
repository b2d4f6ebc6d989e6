"""Scenario 7: a bounded soak (issue #14): steady mixed traffic, the gateway's resources over time.

The soak driver (:mod:`bench.load_soak`) keeps ``WORKERS`` clients busy with a mix
of WebSocket answers, Stops mid-answer, disconnects followed by a resume, SSE
answers (some hung up) and bad input, against the gateway over a paced fake
upstream. Meanwhile this process samples the gateway every ``_SAMPLE_S``: its
resident memory and open file descriptors (psutil), and what ``/metrics``
reports (open sockets, running responses, streamed HTTP answers, asyncio tasks).
After the warm-up (at least twice the resume window, so that the finished
answers kept for resuming have reached their steady number) the samples are
split in thirds; pass criteria, each a row with a target:

- resident memory: the median of the last third at most ``RSS_BOUND_PCT`` % above
  the median of the first;
- open descriptors: the medians of the first and last third within ``FDS_BOUND``;
- every action ended (a terminal frame, status or the expected error arrived),
  none with an unexpected answer;
- every Stop and hang-up reached the upstream (the fake saw its connection
  close), every other upstream request completed, none left running;
- once the traffic stopped, the gateway's in-flight gauges are back to 0;
- asyncio tasks (`gateway_event_loop_tasks`): medians within ``TASKS_BOUND``, and after the
  drain at most ``TASKS_LEFT_BOUND`` more than before the traffic.

Baseline: none in the usual sense; the first third of the run is the reference.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from bench import procs
from bench.config import Config
from bench.load_soak import ACTIONS
from bench.report import Row, Section

WORKERS = 24
TOKENS = 40
DELAY_MS = 10.0
STOP_AFTER_MAX = 10  # a Stop or disconnect comes after 2..10 of the 40 tokens
RESUME_WINDOW_MS = 10_000
RSS_BOUND_PCT = 10.0
FDS_BOUND = 10
_SAMPLE_S = 1.0
_DRAIN_S = 3.0
_GAUGES = ("gateway_ws_sockets_open", "gateway_responses_running", "gateway_http_streams")
_TASKS = "gateway_event_loop_tasks"
TASKS_BOUND = 10  # tasks: last third's median vs the first's
TASKS_LEFT_BOUND = 5  # tasks after the drain vs before any traffic


@dataclass(frozen=True, slots=True)
class Trend:
    """One resource over the measured part of a soak: first third against last third."""

    first: float  # median of the first third of the samples
    last: float  # median of the last third
    slope_per_min: float  # least-squares slope over all of them, per minute

    @property
    def growth(self) -> float:
        return self.last - self.first

    @property
    def growth_pct(self) -> float:
        return self.growth / self.first * 100 if self.first else 0.0


def trend(times: Sequence[float], values: Sequence[float]) -> Trend:
    """The :class:`Trend` of samples ``values`` taken at ``times`` (seconds); 3 or more."""
    if len(values) < 3 or len(times) != len(values):
        raise ValueError("a trend needs at least 3 samples, one time per value")
    third = len(values) // 3
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True))
    slope = covariance / spread if spread else 0.0
    return Trend(
        first=statistics.median(values[:third]),
        last=statistics.median(values[-third:]),
        slope_per_min=slope * 60,
    )


def rss_steady(rss: Trend, bound_pct: float = RSS_BOUND_PCT) -> bool:
    """Memory did not grow by more than ``bound_pct`` % from the first third to the last."""
    return rss.growth_pct <= bound_pct


def fds_flat(fds: Trend, bound: int = FDS_BOUND) -> bool:
    """Open descriptors neither grew nor shrank by more than ``bound``."""
    return abs(fds.growth) <= bound


def parse_gauges(text: str, names: Sequence[str] = (*_GAUGES, _TASKS)) -> dict[str, float]:
    """Unlabelled gauges ``names`` from a Prometheus text exposition (missing ones left out)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[name] = float(value)
    return found


class _Sampler(threading.Thread):
    """Samples the gateway process and its ``/metrics`` until stopped."""

    def __init__(self, gw: procs.Server) -> None:
        super().__init__(daemon=True)
        self._gw = gw
        self._process = psutil.Process(gw.pid)
        self._halt = threading.Event()
        self.samples: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._halt.is_set():
                self.samples.append(sample(self._process, client, self._gw.url, self.started))
                self._halt.wait(_SAMPLE_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def sample(process: psutil.Process, client: httpx.Client, url: str, since: float) -> dict[str, Any]:
    with process.oneshot():
        point: dict[str, Any] = {
            "t": time.monotonic() - since,
            "rss": int(process.memory_info().rss),
            "fds": int(process.num_fds()),
            "threads": int(process.num_threads()),
            "cpu_s": float(sum(process.cpu_times()[:2])),
        }
    try:
        point.update(parse_gauges(client.get(f"{url}/metrics").text))
    except httpx.HTTPError as exc:
        point["metrics_error"] = type(exc).__name__
    return point


def run(cfg: Config) -> Section:
    extra = {"GATEWAY_RESUME_WINDOW_MS": str(RESUME_WINDOW_MS)}
    with (
        procs.fake_upstream(tokens=TOKENS, delay_ms=DELAY_MS, lean=True) as fake,
        procs.gateway(fake.url, extra) as gw,
    ):
        since = fake.last_request_id()
        sampler = _Sampler(gw)
        sampler.start()
        try:
            result = procs.run_driver(
                "load_soak",
                {
                    "url": gw.url,
                    "key": procs.CLIENT_KEY,
                    "fake_url": fake.url,
                    "since": since,
                    "workers": WORKERS,
                    "duration_s": cfg.soak_s,
                    "stop_after_max": STOP_AFTER_MAX,
                },
                timeout_s=cfg.soak_s + 120,
            )
        finally:
            sampler.stop()
        time.sleep(_DRAIN_S)
        with httpx.Client(timeout=5) as client:
            after = sample(psutil.Process(gw.pid), client, gw.url, sampler.started)
    return _section(cfg, result, sampler.samples, after)


def _section(
    cfg: Config, result: dict[str, Any], samples: list[dict[str, Any]], after: dict[str, Any]
) -> Section:
    measured = [s for s in samples if s["t"] >= cfg.soak_warmup_s]
    times = [s["t"] for s in measured]
    rss = trend(times, [s["rss"] / 2**20 for s in measured])
    fds = trend(times, [s["fds"] for s in measured])
    # The gateway exports its task count since the soak was added; an older one not.
    counted = [s for s in measured if _TASKS in s]
    tasks = trend([s["t"] for s in counted], [s[_TASKS] for s in counted]) if counted else None
    tasks_before = samples[0].get(_TASKS)
    actions: dict[str, dict[str, int]] = result["actions"]
    started = sum(a.get("started", 0) for a in actions.values())
    ended = sum(a.get("ended", 0) for a in actions.values())
    unended = sum(a.get("unended", 0) for a in actions.values())
    unexpected = sum(a.get("unexpected", 0) for a in actions.values())
    upstream = result["upstream"]
    outcomes: dict[str, dict[str, int]] = upstream["outcomes"]
    stops = sum(sum(outcomes.get(a, {}).values()) for a in ("ws_stop", "sse_stop"))
    stopped = sum(outcomes.get(a, {}).get("disconnected", 0) for a in ("ws_stop", "sse_stop"))
    gauges_after = {name: after.get(name) for name in _GAUGES}
    drained = all(value == 0 for value in gauges_after.values())
    known = [v for v in gauges_after.values() if v is not None]
    in_flight = sum(known) if len(known) == len(_GAUGES) else None
    duration = f"{cfg.soak_s:g} s, measured after {cfg.soak_warmup_s:g} s"
    rows = [
        Row(
            f"resident memory, median of the last third vs the first ({duration})",
            rss.last,
            rss.first,
            "MiB",
            f"<= +{RSS_BOUND_PCT:g} %",
            rss_steady(rss),
        ),
        Row(
            "open file descriptors, median of the last third vs the first",
            fds.last,
            fds.first,
            target=f"within ±{FDS_BOUND}",
            met=fds_flat(fds),
            compare="added",
        ),
    ]
    if tasks is not None and tasks_before is not None and _TASKS in after:
        rows += [
            Row(
                "asyncio tasks in the gateway's loop, median of the last third vs the first",
                tasks.last,
                tasks.first,
                target=f"within ±{TASKS_BOUND}",
                met=abs(tasks.growth) <= TASKS_BOUND,
                compare="added",
            ),
            Row(
                f"asyncio tasks {_DRAIN_S:g} s after the end vs before any traffic",
                after[_TASKS],
                tasks_before,
                target=f"<= +{TASKS_LEFT_BOUND}",
                met=after[_TASKS] - tasks_before <= TASKS_LEFT_BOUND,
                compare="added",
            ),
        ]
    rows += [
        Row(
            f"actions that got no answer within 30 s, of {started:,}",
            unended,
            target="0",
            met=unended == 0 and started > 0,
        ),
        Row(
            "actions answered otherwise than expected",
            unexpected,
            target="0",
            met=unexpected == 0,
        ),
        Row(
            f"Stops and hang-ups that closed the upstream stream, of {stops:,}",
            stopped,
            target="all",
            met=stops > 0 and stopped == stops,
        ),
        Row(
            "upstream requests that ended otherwise than expected, or still running",
            len(upstream["wrong"]),
            target="0",
            met=not upstream["wrong"] and upstream["still_running"] == 0,
        ),
        Row(
            f"sockets + running responses + HTTP streams in flight, {_DRAIN_S:g} s after the end",
            in_flight,
            target="0",
            met=drained,
        ),
        Row("resident memory trend (least squares)", rss.slope_per_min, unit="MiB/min"),
        Row("open file descriptors trend (least squares)", fds.slope_per_min, unit="fds/min"),
        Row("actions per second", ended / result["elapsed_s"], unit="/s"),
    ]
    cpu = [s["cpu_s"] for s in measured]
    if len(cpu) >= 2 and times[-1] > times[0]:
        busy = (cpu[-1] - cpu[0]) / (times[-1] - times[0]) * 100
        rows.append(Row("gateway CPU, measured part", busy, unit="% of a core"))
    mix = ", ".join(
        f"{name} {actions[name].get('started', 0):,}" for name, _ in ACTIONS if name in actions
    )
    peak = {name: max((s.get(name, 0) for s in measured), default=0) for name in _GAUGES}
    notes = [
        f"{WORKERS} clients for {cfg.soak_s:g} s (`--soak-s` sets it), each with a WebSocket "
        f"of its own, over the lean fake upstream ({TOKENS} tokens at {DELAY_MS:g} ms/token); "
        f"a Stop, disconnect or hang-up comes after 2-{STOP_AFTER_MAX} tokens. Actions started: "
        f"{mix}.",
        f"The gateway runs with a resume window of {RESUME_WINDOW_MS / 1000:g} s; samples "
        f"every {_SAMPLE_S:g} s, the first {cfg.soak_warmup_s:g} s (warm-up: imports, pools, "
        "the answers kept for resuming reaching their steady number) left out; "
        f"{len(measured)} samples measured.",
        f"Resident memory: first third {rss.first:.1f} MiB, last third {rss.last:.1f} MiB "
        f"({rss.growth_pct:+.1f} %); open descriptors {fds.first:g} -> {fds.last:g}; "
        f"peaks in flight: {peak}; after the drain: {gauges_after}, "
        f"{after['fds']} descriptors, {after['rss'] / 2**20:.1f} MiB.",
        "asyncio tasks (`gateway_event_loop_tasks` in /metrics): "
        + (
            f"before the traffic {tasks_before:g}, first third {tasks.first:g}, last third "
            f"{tasks.last:g}, after the drain {after[_TASKS]:g}."
            if tasks is not None and tasks_before is not None and _TASKS in after
            else "not exported by this gateway."
        ),
        f"Upstream outcomes per action: {outcomes}; still running: {upstream['still_running']}.",
        f"Problems ({result['problem_count']}): {result['problems'][:5] or 'none'}; "
        f"driver failures: {result['worker_failures'] or 'none'}.",
    ]
    return Section(
        "soak",
        "7. Soak",
        "the soak's own first third (after the warm-up): memory and descriptors must not "
        "climb from there.",
        rows,
        notes,
        raw={"driver": result, "samples": samples, "after": after},
    )
