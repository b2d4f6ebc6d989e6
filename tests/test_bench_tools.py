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

from bench import _lean_ws, wakeup
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
