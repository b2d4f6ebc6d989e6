"""The benchmark's own tools: the lean WebSocket client, the wake-up probe, request_cost, ab.

The latency and cancel figures are only as good as the client that measures them:
these check it against a real gateway on uvicorn (handshake, auth, masked
frames the server accepts, large frames, refusal).
"""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import orjson
import pytest

from bench import (
    _lean_ws,
    procs,
    report,
    scenario_cancel,
    scenario_latency,
    scenario_redis,
    scenario_soak,
    wakeup,
)
from bench.config import Config
from tests.gateway.ws._support import PROTOCOL, gateway

KEY = "bench-test-key"


async def _frame(ws: _lean_ws.LeanSocket) -> dict[str, object]:
    with anyio.fail_after(3):
        frame: dict[str, object] = orjson.loads(await ws.recv())
    return frame


@pytest.mark.anyio
async def test_lean_socket_streams_a_response_and_sends_masked_frames() -> None:
    async with gateway(client_keys=[KEY]) as gw:
        ws = await _lean_ws.connect(gw.url, {"authorization": f"Bearer {KEY}"}, PROTOCOL)
        try:
            assert (await _frame(ws))["type"] == "session.created"
            # A frame above 125 bytes takes the 16-bit length form on the way out.
            ws.send(orjson.dumps({"type": "ping", "ts": "x" * 300}))
            assert await _frame(ws) == {"type": "pong", "ts": "x" * 300}
            create = {
                "type": "response.create",
                "request_id": "r1",
                "model": "demo/echo",
                "messages": [{"role": "user", "content": "hello lean socket " * 20}],
            }
            ws.send(orjson.dumps(create))
            kinds, text = [], ""
            while (frame := await _frame(ws))["type"] != "response.done":
                kinds.append(frame["type"])
                if frame["type"] == "response.output_text.delta":
                    text += str(frame["delta"])
            assert kinds[0] == "response.created"
            assert frame["status"] == "completed"
            assert "hello lean socket" in text
        finally:
            ws.close()


@pytest.mark.anyio
async def test_lean_socket_reports_a_refused_handshake() -> None:
    async with gateway(client_keys=[KEY]) as gw:
        with pytest.raises(_lean_ws.ConnectionClosed, match="401"):
            await _lean_ws.connect(gw.url, {"authorization": "Bearer wrong"}, PROTOCOL)


def test_wakeup_probe_measures_every_round_trip() -> None:
    core = min(os.sched_getaffinity(0))
    reading = wakeup.one_way_us(core, core, samples=50, gap_s=0)
    assert reading["n"] == 50
    assert 0 < reading["p50"] <= reading["p99"] <= reading["max"]


def test_request_cost_runs_streamed_requests_through_the_whole_gateway() -> None:
    # A subprocess: the tool pins itself to a core, which must not stick to the tests.
    done = subprocess.run(
        [sys.executable, "-m", "bench.request_cost", "--requests", "20", "--batches", "2"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    line = done.stdout.decode().strip()
    assert line.startswith("CPU µs per request, per batch of 20: ")
    per_batch = [float(x) for x in line.split(": ")[1].split(" (")[0].split()]
    assert len(per_batch) == 2 and all(us > 0 for us in per_batch)


_AB_SMALL_RUN = (
    *("--paths", "sse,ws", "--concurrency", "2", "--tokens", "5"),
    *("--rounds", "1", "--measure", "0.6", "--warmup", "0.2"),
)


def _in_git_checkout() -> bool:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:  # no git at all
        return False
    return done.returncode == 0 and done.stdout.strip() == b"true"


@pytest.mark.skipif(
    not _in_git_checkout(), reason="bench.ab needs `git worktree`: not a git checkout here"
)
def test_ab_measures_two_checkouts_in_one_run() -> None:
    # HEAD goes into a temporary git worktree; WORKTREE is this checkout as it is.
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab", "HEAD", "WORKTREE", *_AB_SMALL_RUN],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    first_tokens = {
        cells[0]: int(cells[-1])
        for line in done.stdout.decode().splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])
        and cells[-1].isdigit()
    }
    assert first_tokens.keys() == {"direct", "before sse", "after sse", "before ws", "after ws"}
    assert all(count > 0 for count in first_tokens.values()), first_tokens


# --- pure helpers of the Redis and soak scenarios ------------------------------------------


def test_trend_compares_the_first_and_last_third_and_fits_a_slope() -> None:
    times = [float(t) for t in range(9)]
    # Flat first third, a spike in the middle (ignored by the medians), growth at the end.
    values = [100.0, 101.0, 100.0, 100.0, 180.0, 100.0, 110.0, 111.0, 110.0]
    found = scenario_soak.trend(times, values)
    assert (found.first, found.last) == (100.0, 110.0)
    assert found.growth == 10.0 and found.growth_pct == pytest.approx(10.0)
    steady = scenario_soak.trend(times, [5.0] * 9)
    assert steady.slope_per_min == 0.0
    # 1 MiB per second is 60 MiB per minute.
    assert scenario_soak.trend(times, times).slope_per_min == pytest.approx(60.0)
    with pytest.raises(ValueError):
        scenario_soak.trend([0.0, 1.0], [1.0, 2.0])


def test_soak_criteria_fail_on_growth_beyond_their_bounds() -> None:
    times = [float(t) for t in range(6)]
    assert scenario_soak.rss_steady(scenario_soak.trend(times, [100, 100, 105, 105, 109, 109]))
    assert not scenario_soak.rss_steady(scenario_soak.trend(times, [100, 100, 105, 105, 111, 111]))
    assert scenario_soak.fds_flat(scenario_soak.trend(times, [70, 70, 75, 75, 60, 60]))
    assert not scenario_soak.fds_flat(scenario_soak.trend(times, [70, 70, 75, 75, 81, 81]))
    assert not scenario_soak.fds_flat(scenario_soak.trend(times, [70, 70, 65, 65, 59, 59]))


def test_parse_gauges_reads_unlabelled_gauges_of_a_prometheus_exposition() -> None:
    text = (
        "# HELP gateway_ws_sockets_open Open WebSocket sessions\n"
        "# TYPE gateway_ws_sockets_open gauge\n"
        "gateway_ws_sockets_open 3.0\n"
        'gateway_circuit_state{provider="openai"} 0.0\n'
        "gateway_ws_sockets_open_total 9.0\n"
        "gateway_http_streams 0.0\n"
        "gateway_event_loop_tasks 42.0\n"
    )
    assert scenario_soak.parse_gauges(text) == {
        "gateway_ws_sockets_open": 3.0,
        "gateway_http_streams": 0.0,
        "gateway_event_loop_tasks": 42.0,
    }


def test_pooled_rounds_sum_tokens_and_cpu_for_the_cost_per_token() -> None:
    def round_(tokens: int, gateway_s: float) -> dict[str, object]:
        return {
            "left_running": 0,
            "errors": 0,
            "worker_failures": [],
            "cpu_us_per_token": {},
            "tokens": tokens,
            "elapsed_s": 2.0,
            "cpu_s": {"gateway": gateway_s, "redis": 0.1},
            "samples": {"ttft_ms": [1.0], "token_latency_ms": [1.0, 3.0], "gap_ms": []},
        }

    run = scenario_latency.pooled("ws", 100, 200, [round_(1000, 0.05), round_(3000, 0.25)])
    assert run["tokens"] == 4000 and run["elapsed_s"] == 4.0
    # 0.30 s over 4,000 tokens: 75 µs each (not the mean of the rounds' 50 and 83 µs).
    assert scenario_redis.per_token_us(run, "gateway") == pytest.approx(75.0)
    assert scenario_redis.per_token_us(run, "redis") == pytest.approx(50.0)
    assert run["token_latency_ms"]["n"] == 4  # both rounds' samples
    assert scenario_redis.per_token_us({**run, "tokens": 0}, "gateway") is None


def test_redis_info_reads_the_counters_of_a_throwaway_redis_server() -> None:
    with procs.redis_server() as redis:
        assert redis.url.startswith("redis://127.0.0.1:") and not redis.url.endswith(":6379/0")
        before = procs.redis_info(redis.url)
        after = procs.redis_info(redis.url)
    # Each INFO is itself a command that Redis counts.
    assert int(after["total_commands_processed"]) > int(before["total_commands_processed"])
    assert "total_reads_processed" in after


def test_the_report_states_how_long_each_scenario_ran() -> None:
    info = {**report.machine(), "durations_s": {"relay": 130.4, "soak": 155.0}}
    lines = report.markdown(info, [], []).splitlines()
    assert "- Run time: 4.8 min (relay 130 s, soak 155 s)" in lines
    assert not any(
        line.startswith("- Run time")
        for line in report.markdown(report.machine(), [], []).splitlines()
    )


def test_the_cancel_scenario_caps_only_its_one_at_a_time_level() -> None:
    full, quick = Config.full(), Config.smoke()
    assert scenario_cancel._cancels(full, 1) == scenario_cancel.SERIAL_CANCELS < 500
    assert scenario_cancel._cancels(full, 10) == scenario_cancel._cancels(full, 100) == 500
    assert scenario_cancel._cancels(quick, 1) == 100
