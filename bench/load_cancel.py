"""Load driver: N concurrent clients each stop their response after its Nth token.

Modes: ``ws`` sends ``response.cancel``; ``ws-close`` closes the socket (the
gateway must then run with a resume window of 0); ``sse`` closes the HTTP
stream; ``direct`` (the baseline) closes a stream read from the fake itself.
HTTP streams are read with the lean client (``bench/_lean_http.py``) and closed
by cutting their connection, as a browser does when a fetch is aborted; sockets
with the lean WebSocket client (``bench/_lean_ws.py``).
Each request names itself in its user message (the fake reports it as
``marker``); the client notes ``time.monotonic()`` just before it cancels, and
the fake's ``ended_at`` for that request says when the upstream saw its
connection closed. Both are CLOCK_MONOTONIC, so the difference is the cancel
latency.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import orjson

from bench import _driver, _lean_ws
from bench._lean_http import LeanClient
from bench.stats import summary
from gateway.upstream import LineDecoder

_GRACE_S = 3.0  # how long an upstream stream may take to end before it counts as orphaned


def _create(marker: str) -> str:
    return orjson.dumps(
        {
            "type": "response.create",
            "request_id": marker,
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": marker}],
        }
    ).decode()


async def _connect(url: str, key: str) -> _lean_ws.LeanSocket:
    ws = await _lean_ws.connect(url, {"authorization": f"Bearer {key}"}, "chat-gateway.v1")
    await ws.recv()  # session.created
    return ws


def _refused_create(frame: dict[str, Any], marker: str, response_id: str | None) -> bool:
    error = frame["error"]
    return response_id is None and error["code"] == "rate_limited" and error["request_id"] == marker


async def _ws_worker(
    worker: int,
    args: dict[str, Any],
    cancels: dict[str, tuple[float, int]],
    statuses: list[str],
    retries: list[str],
) -> None:
    url = args["url"].replace("http://", "ws://") + "/api/v1/ws"
    after: int = args["after_tokens"]
    close_socket = args["mode"] == "ws-close"
    ws = await _connect(url, args["key"])
    try:
        for round_ in range(args["rounds"]):
            if close_socket and round_:
                ws = await _connect(url, args["key"])
            marker = f"cancel-{worker}-{round_}"
            ws.send(_create(marker))
            tokens = 0
            response_id = None
            while True:
                frame = orjson.loads(await ws.recv())
                kind = frame["type"]
                if kind == "response.created":
                    response_id = frame["response_id"]
                elif kind == "response.output_text.delta":
                    tokens = frame["seq"]
                    if tokens >= after and marker not in cancels:
                        if close_socket:
                            cancels[marker] = (time.monotonic(), tokens)
                            ws.close()
                            break
                        cancel = {"type": "response.cancel", "response_id": response_id}
                        data = orjson.dumps(cancel).decode()
                        cancels[marker] = (time.monotonic(), tokens)
                        ws.send(data)
                elif kind == "error" and _refused_create(frame, marker, response_id):
                    # The gateway's default message rate paces creates: wait as told.
                    retries.append(marker)
                    await asyncio.sleep(frame["error"]["retry_after_ms"] / 1000)
                    ws.send(_create(marker))
                elif kind in ("response.done", "error"):
                    statuses.append(frame.get("status", "error"))
                    break
    finally:
        ws.close()


async def _sse_worker(
    worker: int,
    args: dict[str, Any],
    client: LeanClient,
    cancels: dict[str, tuple[float, int]],
    statuses: list[str],
) -> None:
    if args["mode"] == "direct":  # the baseline: the same client on the fake itself
        url, headers = args["url"] + "/v1/chat/completions", {}
    else:
        url = args["url"] + "/api/v1/chat/completions"
        headers = {"authorization": f"Bearer {args['key']}"}
    after: int = args["after_tokens"]
    for round_ in range(args["rounds"]):
        marker = f"cancel-{worker}-{round_}"
        body = {
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": marker}],
        }
        tokens = 0
        exchange = await client.post(url, orjson.dumps(body), headers)
        lines = LineDecoder()
        try:
            while marker not in cancels and (chunk := await exchange.read()):
                for line in lines.feed(chunk):
                    if line.startswith(b"data: {") and b'"content":"' in line:
                        if b'"content":""' in line:
                            continue
                        tokens += 1
                        if tokens >= after:
                            cancels[marker] = (time.monotonic(), tokens)
                            exchange.abort()  # hang up now
                            break
        finally:
            exchange.close()
        statuses.append("closed" if marker in cancels else "completed")


async def _main(args: dict[str, Any]) -> dict[str, Any]:
    concurrency: int = args["concurrency"]
    cancels: dict[str, tuple[float, int]] = {}
    statuses: list[str] = []
    retries: list[str] = []  # creates refused by the message rate, then resent
    pids = {"client": os.getpid(), **args.get("pids", {})}
    cpu0 = _driver.cpu_of(pids)
    client = LeanClient()

    async def staggered(worker: int) -> None:
        await asyncio.sleep(random.uniform(0, args.get("stagger_s", 0.2)))
        if args["mode"] in ("sse", "direct"):
            await _sse_worker(worker, args, client, cancels, statuses)
        else:
            await _ws_worker(worker, args, cancels, statuses, retries)

    started = time.monotonic()
    results = await asyncio.gather(
        *(staggered(w) for w in range(concurrency)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    await client.aclose()
    cpu1 = _driver.cpu_of(pids)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    records = await _driver.fake_records(args["fake_url"], args["since"], set(cancels), _GRACE_S)
    latencies = []
    outcomes: dict[str, int] = {}
    chunks_after: list[int] = []
    for marker, (sent, tokens_seen) in cancels.items():
        record = records.get(marker)
        outcome = record["outcome"] if record else "missing"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if record and record["ended_at"] is not None and outcome == "disconnected":
            latencies.append((record["ended_at"] - sent) * 1000)
            chunks_after.append(record["chunks_sent"] - tokens_seen)
    return {
        "mode": args["mode"],
        "concurrency": concurrency,
        "after_tokens": args["after_tokens"],
        "elapsed_s": elapsed,
        "cancelled": len(cancels),
        "client_statuses": {s: statuses.count(s) for s in set(statuses)},
        "creates_rate_limited": len(retries),
        "upstream_outcomes": outcomes,
        "orphaned": outcomes.get("pending", 0),
        "completed_despite_cancel": outcomes.get("completed", 0),
        "cancel_to_upstream_closed_ms": summary(latencies),
        "upstream_chunks_after_cancel": summary([float(c) for c in chunks_after]),
        "worker_failures": failures[:5],
        "cpu_s": {k: cpu1[k] - cpu0[k] for k in pids},
    }


if __name__ == "__main__":
    _driver.run(_main)
