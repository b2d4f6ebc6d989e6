"""Load driver: streamed responses back to back on N concurrent clients, for a fixed window.

Modes (``args["mode"]``):

- ``direct``: the baseline, a client reading the fake upstream's SSE stream;
- ``sse``: the same client reading the gateway's ``POST /api/v1/chat/completions``;
- ``ws``: one client socket per concurrent response, on ``/api/v1/ws``, read by the
  lean WebSocket client of :mod:`bench._lean_ws`.

The HTTP client (``args["client"]``) is a bare ``httpx.AsyncClient`` reading line
by line with ``aiter_lines()`` (``httpx``, the default: the relay scenario's CPU
baseline), or :class:`bench._lean_http.LeanClient` (``lean``: the latency
scenario's, cheap enough not to saturate at concurrency 100).

Counters run all the time; the result is their difference over the measured
window (after ``warmup_s``), beside the CPU time every named process
(``args["pids"]``, plus this client) spent in that same window. With
``stamp: true`` (a fake started with ``--stamp-tokens``) it also collects
per-token delivery latency (fake send -> client receive) and inter-arrival gaps
of every token received inside the window, and time to first token of the
requests sent inside it (``samples: true`` returns the samples themselves too).
With ``redis_url`` it also reports what that Redis processed in the window
(commands, and read events: one per batch a client sent, so round trips).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench import _driver, _lean_ws, procs
from bench._lean_http import LeanClient
from bench.stats import summary
from gateway.upstream import LineDecoder

_ids = itertools.count()


@dataclass
class _Counters:
    tokens: int = 0
    frames: int = 0
    responses: int = 0
    errors: int = 0


@dataclass
class _Window:
    start: float = float("inf")
    end: float = float("inf")
    ttft_ms: list[float] = field(default_factory=list)
    token_ms: list[float] = field(default_factory=list)
    gap_ms: list[float] = field(default_factory=list)

    def inside(self, t: float) -> bool:
        return self.start <= t <= self.end


class _Stamps:
    """Latency bookkeeping of one response (stamp mode only)."""

    __slots__ = ("last", "sent", "window")

    def __init__(self, window: _Window, sent: float) -> None:
        self.window = window
        self.sent = sent
        self.last: float | None = None

    def tokens(self, text: str, now: float) -> None:
        last, self.last = self.last, now
        window = self.window
        if not window.inside(now):
            return
        now_ns = time.monotonic_ns()
        for stamp in text.split(" @")[1:]:
            window.token_ms.append((now_ns - int(stamp)) / 1e6)
        if last is None:
            if window.inside(self.sent):  # the whole wait lies inside the window
                window.ttft_ms.append((now - self.sent) * 1000)
        else:
            window.gap_ms.append((now - last) * 1000)


def _body(marker: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": marker}],
    }


async def _http_worker(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    counters: _Counters,
    window: _Window | None,
) -> None:
    while True:
        marker = f"relay-{next(_ids)}"
        sent = time.monotonic()
        stamps = _Stamps(window, sent) if window is not None else None
        async with client.stream("POST", url, json=_body(marker), headers=headers) as response:
            if response.status_code != 200:
                counters.errors += 1
                await response.aread()
                await asyncio.sleep(0.1)
                continue
            async for line in response.aiter_lines():
                # The role chunk carries "content":"" and the finish chunk no content.
                if line.startswith("data: {") and '"content":"' in line:
                    if '"content":""' in line:
                        continue
                    counters.tokens += 1
                    counters.frames += 1
                    if stamps is not None:
                        chunk = orjson.loads(line[6:])
                        stamps.tokens(chunk["choices"][0]["delta"]["content"], time.monotonic())
        counters.responses += 1


async def _lean_worker(
    client: LeanClient,
    url: str,
    headers: dict[str, str],
    counters: _Counters,
    window: _Window | None,
) -> None:
    while True:
        marker = f"relay-{next(_ids)}"
        sent = time.monotonic()
        stamps = _Stamps(window, sent) if window is not None else None
        exchange = await client.post(url, orjson.dumps(_body(marker)), headers)
        try:
            if exchange.status != 200:
                counters.errors += 1
                await asyncio.sleep(0.1)
                continue
            lines = LineDecoder()
            while chunk := await exchange.read():
                now = time.monotonic()
                for line in lines.feed(chunk):
                    # The role chunk carries "content":"" and the finish chunk no content.
                    if line.startswith(b"data: {") and b'"content":"' in line:
                        if b'"content":""' in line:
                            continue
                        counters.tokens += 1
                        counters.frames += 1
                        if stamps is not None:
                            chunk_ = orjson.loads(line[6:])
                            stamps.tokens(chunk_["choices"][0]["delta"]["content"], now)
        finally:
            exchange.close()
        counters.responses += 1


async def _ws_worker(
    url: str, key: str, counters: _Counters, window: _Window | None, stop: asyncio.Event
) -> None:
    ws = await _lean_ws.connect(url, {"authorization": f"Bearer {key}"}, "chat-gateway.v1")
    try:
        await ws.recv()  # session.created
        loads = orjson.loads
        while not stop.is_set():
            request_id = f"relay-{next(_ids)}"
            create = {"type": "response.create", "request_id": request_id, **_body(request_id)}
            del create["stream"]
            sent = time.monotonic()
            stamps = _Stamps(window, sent) if window is not None else None
            ws.send(orjson.dumps(create))
            last_seq = 0
            response_id = None
            cancelled = False
            while True:
                frame = loads(await ws.recv())
                kind = frame["type"]
                if kind == "response.output_text.delta":
                    seq = frame["seq"]
                    counters.tokens += seq - last_seq
                    counters.frames += 1
                    last_seq = seq
                    if stamps is not None:
                        stamps.tokens(frame["delta"], time.monotonic())
                elif kind == "response.created":
                    response_id = frame["response_id"]
                elif kind == "response.done":
                    if frame["status"] == "completed":
                        counters.responses += 1
                    elif frame["status"] != "cancelled":
                        counters.errors += 1
                    break
                elif kind == "error":
                    counters.errors += 1
                    break
                if stop.is_set() and not cancelled and response_id is not None:
                    # Leave nothing running upstream for the next measurement.
                    cancelled = True
                    ws.send(orjson.dumps({"type": "response.cancel", "response_id": response_id}))
    finally:
        ws.close()


async def _main(args: dict[str, Any]) -> dict[str, Any]:
    mode: str = args["mode"]
    concurrency: int = args["concurrency"]
    pids: dict[str, int] = dict(args.get("pids", {}))
    pids["client"] = os.getpid()
    counters = _Counters()
    window = _Window() if args.get("stamp") else None
    stop = asyncio.Event()
    stagger_s: float = args.get("stagger_s", 0.0)

    async def staggered(coro: Any) -> None:
        # Desynchronise paced streams, as independent users would be.
        await asyncio.sleep(random.uniform(0, stagger_s))
        await coro

    tasks: list[asyncio.Task[None]] = []
    client: httpx.AsyncClient | LeanClient | None = None
    if mode == "ws":
        url = args["url"].replace("http://", "ws://") + "/api/v1/ws"
        for _ in range(concurrency):
            coro = _ws_worker(url, args["key"], counters, window, stop)
            tasks.append(asyncio.create_task(staggered(coro)))
    else:
        if mode == "direct":
            url, headers = args["url"] + "/v1/chat/completions", {}
        else:
            url = args["url"] + "/api/v1/chat/completions"
            headers = {"authorization": f"Bearer {args['key']}"}
        if args.get("client", "httpx") == "lean":
            client = LeanClient()
            for _ in range(concurrency):
                coro = _lean_worker(client, url, headers, counters, window)
                tasks.append(asyncio.create_task(staggered(coro)))
        else:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
            client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))
            for _ in range(concurrency):
                coro = _http_worker(client, url, headers, counters, window)
                tasks.append(asyncio.create_task(staggered(coro)))

    redis_url: str | None = args.get("redis_url")
    await asyncio.sleep(args["warmup_s"])
    redis0 = _redis_counters(redis_url)
    t0, cpu0, c0 = time.monotonic(), _driver.cpu_of(pids), _Counters(**vars(counters))
    if window is not None:
        window.start = t0
    await asyncio.sleep(args["measure_s"])
    t1, cpu1, c1 = time.monotonic(), _driver.cpu_of(pids), _Counters(**vars(counters))
    redis1 = _redis_counters(redis_url)
    if window is not None:
        window.end = t1
    failed = [t for t in tasks if t.done() and t.exception() is not None]
    stop.set()
    if mode == "ws":
        _, pending = await asyncio.wait(tasks, timeout=5)
    else:
        pending = set(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if client is not None:
        await client.aclose()

    elapsed = t1 - t0
    tokens = c1.tokens - c0.tokens
    frames = c1.frames - c0.frames
    cpu = {name: cpu1[name] - cpu0[name] for name in pids}
    result: dict[str, Any] = {
        "mode": mode,
        "concurrency": concurrency,
        "elapsed_s": elapsed,
        "tokens": tokens,
        "frames": frames,
        "responses": c1.responses - c0.responses,
        "errors": c1.errors - c0.errors,
        "worker_failures": [repr(t.exception()) for t in failed][:5],
        "tokens_per_s": tokens / elapsed,
        "frames_per_s": frames / elapsed,
        "cpu_s": cpu,
        "cpu_us_per_token": {k: (v / tokens * 1e6 if tokens else None) for k, v in cpu.items()},
    }
    if redis_url is not None:
        result["redis"] = {name: redis1[name] - redis0[name] for name in redis0}
    if window is not None:
        result["ttft_ms"] = summary(window.ttft_ms)
        result["token_latency_ms"] = summary(window.token_ms)
        result["gap_ms"] = summary(window.gap_ms)
        if args.get("samples"):  # for a caller pooling several runs
            result["samples"] = {
                key: [round(x, 4) for x in values]  # 0.1 µs is plenty, and halves the JSON
                for key, values in (
                    ("ttft_ms", window.ttft_ms),
                    ("token_latency_ms", window.token_ms),
                    ("gap_ms", window.gap_ms),
                )
            }
    return result


def _redis_counters(url: str | None) -> dict[str, int]:
    """Redis's own counters (``INFO stats``); a blocking read of a millisecond or so,
    taken only at the window's edges."""
    if url is None:
        return {}
    info = procs.redis_info(url)
    return {name: int(info[name]) for name in ("total_commands_processed", "total_reads_processed")}


if __name__ == "__main__":
    _driver.run(_main)
