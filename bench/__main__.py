"""``python -m bench`` (``make bench``): run the benchmark scenarios and write the results.

    python -m bench                      # everything (~12-13 minutes on 2 cores)
    python -m bench --only relay,cancel  # a subset
    python -m bench --quick              # short smoke run

A full run writes ``bench/results.json`` and ``bench/RESULTS.md``; a partial or
quick run writes ``bench/results.partial.json`` and ``bench/RESULTS.partial.md``
so the committed results always come from a complete run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    procs,
    report,
    scenario_cancel,
    scenario_idle,
    scenario_latency,
    scenario_redis,
    scenario_relay,
    scenario_resume,
    scenario_soak,
)
from bench.config import Config
from bench.report import Section

HERE = Path(__file__).resolve().parent

SCENARIOS: dict[str, tuple[str, Callable[[Config], Section]]] = {
    "relay": ("1. Streaming relay throughput and cost", scenario_relay.run),
    "latency": ("2. Added latency", scenario_latency.run),
    "cancel": ("3. Cancel latency", scenario_cancel.run),
    "idle": ("4. Idle sockets", scenario_idle.run),
    "resume": ("5. Resume", scenario_resume.run),
    "redis": ("6. Redis session backend", scenario_redis.run),
    "soak": ("7. Soak", scenario_soak.run),
}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument(
        "--soak-s", type=float, default=None, help="how long the soak runs, warm-up included"
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: bench/)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    cfg = Config.smoke() if args.quick else Config.full()
    if args.soak_s is not None:
        cfg = dataclasses.replace(
            cfg, soak_s=args.soak_s, soak_warmup_s=min(cfg.soak_warmup_s, args.soak_s / 3)
        )
    procs.raise_fd_limit()
    info = report.machine()
    sections: list[Section] = []
    durations: dict[str, float] = {}
    for name in chosen:
        title, run = SCENARIOS[name]
        print(f"[bench] {title} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            section = run(cfg)
        except Exception as exc:
            traceback.print_exc()
            # A gateway feature that is not there yet must not sink the other scenarios.
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
            section = Section(name, title, "", [], [], skipped=reason)
        durations[name] = round(time.monotonic() - started, 1)
        print(f"[bench] {title}: {durations[name]:.0f} s", file=sys.stderr, flush=True)
        sections.append(section)
    # How long each scenario took: `make bench` has a time budget (bench/README.md).
    info["durations_s"] = durations
    # Only a run in which every scenario ran replaces the committed results.
    complete = chosen == list(SCENARIOS) and not args.quick and not any(s.skipped for s in sections)
    out = args.out or HERE
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if complete else ".partial"
    json_path = out / f"results{suffix}.json"
    md_path = out / f"RESULTS{suffix}.md"
    report.write_json(json_path, info, sections, raw_argv)
    md_path.write_text(report.markdown(info, sections, raw_argv) + "\n", encoding="utf-8")
    print(f"[bench] wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
