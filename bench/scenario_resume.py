"""Scenario 5: response.resume -> first replayed frame, with a 1,000-event buffer.

Baseline: a ping -> pong round trip on the same fresh socket just before the
resume (the floor of any request/answer over that socket).
"""

from __future__ import annotations

from bench import procs
from bench.config import Config
from bench.report import Row, Section

EVENTS = 1_000


def run(cfg: Config) -> Section:
    with procs.fake_upstream(tokens=EVENTS) as fake, procs.gateway(fake.url) as gw:
        result = procs.run_driver(
            "load_resume", {"url": gw.url, "key": procs.CLIENT_KEY, "rounds": cfg.resume_rounds}
        )
    pong = result["ping_pong_ms"]
    rows: list[Row] = []
    for figure, key in (
        ("resume -> first replayed frame", "first_replayed_frame_ms"),
        ("resume -> resume.result", "resume_result_ms"),
        ("resume -> replayed response.done (whole replay)", "replay_done_ms"),
    ):
        for pct in ("p50", "p99"):
            rows.append(Row(f"{figure} {pct}", result[key][pct], pong[pct], "ms", compare="added"))
    notes = [
        f"{cfg.resume_rounds} rounds. Each resumes a finished {EVENTS}-token response "
        f"(created + {EVENTS} deltas + done in its replay buffer) with `last_seq: 0` on a new "
        "socket after the first one closed.",
        f"Replayed tokens per resume: p50 {result['replayed_tokens']['p50']}; frames carrying "
        f"them: p50 {result['replayed_frames']['p50']} (replayed deltas merge in the outbox).",
        f"Failures: {result['failures'] or 'none'}.",
    ]
    return Section(
        "resume",
        "5. Resume",
        "ping -> pong round trip on the same socket, just before the resume.",
        rows,
        notes,
        raw=result,
    )
