"""``python -m bench.ab BEFORE AFTER``: two versions of the gateway measured in one run.

    python -m bench.ab HEAD~1 HEAD          # two commits
    python -m bench.ab HEAD WORKTREE        # the last commit against uncommitted changes
    python -m bench.ab HEAD~1 HEAD --rounds 8 --measure 6 --paths ws,sse

On the virtual machine of these results the added-latency figures move with the
host's load by more than most changes are worth: two full runs taken minutes
apart cannot tell a change from the drift. Here both versions run at once, as
two gateways (each checked out into a temporary git worktree; ``WORKTREE`` is
this checkout as it is) over one paced fake upstream, and the direct baseline
and every (version, path) pair are measured in interleaved rounds, their order
rotated each round, samples pooled: all of them see the same drift. Placement,
clients and the fake are scenario 2's (see README.md).

It prints time to first token and per-token latency (p50, p99; added = minus
the direct baseline) per version and path, and the machine's wake-up latency
before and after. Nothing is written to ``bench/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs, scenario_latency, wakeup
from bench.stats import summary

WORKTREE = "WORKTREE"
_KEYS = ("ttft_ms", "token_latency_ms")


@dataclass(frozen=True, slots=True)
class Options:
    before: str
    after: str
    concurrency: int
    tokens: int
    rounds: int
    measure_s: float
    warmup_s: float
    paths: tuple[str, ...]


@contextlib.contextmanager
def _checkout(ref: str) -> Iterator[Path]:
    """A directory holding ``ref``'s tree: a temporary detached worktree, or this checkout."""
    if ref == WORKTREE:
        yield procs.REPO
        return
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        tree = Path(tmp) / "tree"
        _git("worktree", "add", "--detach", "--quiet", str(tree), ref)
        try:
            yield tree
        finally:
            _git("worktree", "remove", "--force", str(tree))


def _imports_from(tree: Path) -> None:
    """Fail unless a gateway started in ``tree`` would import that tree's packages."""
    shown = subprocess.run(
        [
            procs.PYTHON,
            "-c",
            "import gateway, sessions; print(gateway.__file__, sessions.__file__)",
        ],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    outside = [path for path in shown if not Path(path).resolve().is_relative_to(tree.resolve())]
    if outside:
        raise RuntimeError(f"a gateway started in {tree} would import {outside}")


def _git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=procs.REPO, check=True, capture_output=True)


def _round(
    opts: Options, fake: procs.Server, gateways: dict[str, procs.Server], round_: int
) -> dict[str, dict[str, list[float]]]:
    placement = procs.isolated()
    runs = ["direct"] + [f"{v} {p}" for p in opts.paths for v in gateways]
    shift = round_ % len(runs)
    samples: dict[str, dict[str, list[float]]] = {}
    for run in runs[shift:] + runs[:shift]:
        version, _, path = run.partition(" ")
        server = fake if run == "direct" else gateways[version]
        result = procs.run_driver(
            "load_relay",
            scenario_latency.driver_args(
                "direct" if run == "direct" else path,
                server,
                server,
                fake,
                concurrency=opts.concurrency,
                tokens=opts.tokens,
                warmup_s=opts.warmup_s,
                measure_s=opts.measure_s,
            ),
            cores=placement.load,
        )
        samples[run] = {key: result["samples"][key] for key in _KEYS}
    return samples


def measure(opts: Options) -> dict[str, dict[str, Any]]:
    """Pooled summaries per run name ("direct", "before ws", "after sse", ...)."""
    placement = procs.isolated()
    pooled: dict[str, dict[str, list[float]]] = {}
    with contextlib.ExitStack() as stack:
        trees = {name: stack.enter_context(_checkout(ref)) for name, ref in _versions(opts)}
        for tree in trees.values():
            _imports_from(tree)
        fake = stack.enter_context(
            procs.fake_upstream(
                tokens=opts.tokens,
                delay_ms=scenario_latency.DELAY_MS,
                stamp=True,
                lean=True,
                cores=placement.load,
            )
        )
        gateways = {
            name: stack.enter_context(procs.gateway(fake.url, cores=placement.gateway, source=tree))
            for name, tree in trees.items()
        }
        for round_ in range(opts.rounds):
            for run, samples in _round(opts, fake, gateways, round_).items():
                for key, values in samples.items():
                    pooled.setdefault(run, {}).setdefault(key, []).extend(values)
    return {run: {key: summary(values) for key, values in s.items()} for run, s in pooled.items()}


def _versions(opts: Options) -> list[tuple[str, str]]:
    return [("before", opts.before), ("after", opts.after)]


def render(opts: Options, results: dict[str, dict[str, Any]]) -> str:
    base = results["direct"]
    lines = [
        f"before = {opts.before}, after = {opts.after}; c={opts.concurrency}, "
        f"{opts.rounds} rounds of {opts.measure_s:g} s per run",
        "",
        "| Run | TTFT p50 | TTFT p99 | per-token p50 | per-token p99 | first tokens |",
        "|---|---|---|---|---|---|",
    ]
    for run, figures in results.items():
        cells = []
        for key in _KEYS:
            for pct in ("p50", "p99"):
                value = figures[key][pct]
                added = "" if run == "direct" else f" ({value - base[key][pct]:+.2f})"
                cells.append(f"{value:.2f} ms{added}")
        lines.append(f"| {run} | {' | '.join(cells)} | {figures['ttft_ms']['n']} |")
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("before", help=f"git revision, or {WORKTREE}")
    parser.add_argument("after", help=f"git revision, or {WORKTREE}")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--measure", type=float, default=6.0, help="seconds per run and round")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before each run")
    parser.add_argument("--paths", default="ws,sse", help="comma-separated: ws, sse")
    args = parser.parse_args(argv)
    return Options(
        before=args.before,
        after=args.after,
        concurrency=args.concurrency,
        tokens=args.tokens,
        rounds=args.rounds,
        measure_s=args.measure,
        warmup_s=args.warmup,
        paths=tuple(p.strip() for p in args.paths.split(",") if p.strip()),
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parse(argv)
    cores = sorted(os.sched_getaffinity(0))
    machine_before = wakeup.describe(cores)
    results = measure(opts)
    print(render(opts, results))
    print(f"\nwake-up latency before: {machine_before}; after: {wakeup.describe(cores)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
