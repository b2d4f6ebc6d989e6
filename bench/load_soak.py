"""Load driver: steady mixed traffic for a fixed time (the soak, issue #14).

``workers`` clients, each with a WebSocket of its own, pick one action after
another at random (seeded, weights in ``ACTIONS``) until ``duration_s`` is over:

- ``ws_stream``: ``response.create`` read to its ``response.done`` (completed);
- ``ws_stop``: Stop after a few tokens (``response.cancel``), read to ``cancelled``;
- ``ws_resume``: close the socket after a few tokens, open a new one, send
  ``response.resume`` with the last seq seen, read the rest to ``completed``;
- ``sse`` / ``sse_stop``: ``POST /api/v1/chat/completions`` read to ``[DONE]``,
  or hung up after a few tokens;
- ``bad_ws_json``, ``bad_ws_model``: a frame that is not JSON, a create for a model
  nobody serves: each must get its typed ``error`` frame, the socket staying open;
- ``bad_http_json``, ``bad_http_model``: the same over HTTP: a 4xx with an error code.

Every request names itself in its user message (the fake reports it as
``marker``). An action "ended" when its terminal frame, status or error arrived
as expected; one with no answer within ``_ANSWER_TIMEOUT_S`` is ``unended``, one
with a different answer ``unexpected``. At the end the driver asks the fake how
each upstream request ended: every stopped or hung-up one must be
``disconnected`` (the cancel reached the provider), every other one
``completed``, none still running.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import orjson

from bench import _driver, _lean_ws
from bench._lean_http import LeanClient
from gateway.upstream import LineDecoder

# (action, weight): mostly answers, some stopped or resumed, a little bad input.
ACTIONS = (
    ("ws_stream", 30),
    ("ws_stop", 15),
    ("ws_resume", 10),
    ("sse", 25),
    ("sse_stop", 8),
    ("bad_ws_json", 3),
    ("bad_ws_model", 3),
    ("bad_http_json", 3),
    ("bad_http_model", 3),
)
# What the fake should have seen for each action's upstream request.
UPSTREAM_EXPECTED = {
    "ws_stream": "completed",
    "ws_stop": "disconnected",
    "ws_resume": "completed",
    "sse": "completed",
    "sse_stop": "disconnected",
}
_ANSWER_TIMEOUT_S = 30.0
_GRACE_S = 5.0  # how long upstream streams may take to end after the last action
_UNKNOWN_MODEL = "nosuch/model"


class _Unexpected(Exception):
    """The gateway answered, but not what this action expects."""


class _Worker:
    def __init__(self, index: int, args: dict[str, Any], client: LeanClient) -> None:
        self.index = index
        self.args = args
        self.client = client
        self.url = args["url"].replace("http://", "ws://") + "/api/v1/ws"
        self.http_url = args["url"] + "/api/v1/chat/completions"
        self.headers = {"authorization": f"Bearer {args['key']}"}
        self.ws: _lean_ws.LeanSocket | None = None
        self.n = 0

    # --- plumbing ------------------------------------------------------------------------

    async def socket(self) -> _lean_ws.LeanSocket:
        if self.ws is None:
            self.ws = await _lean_ws.connect(self.url, self.headers, "chat-gateway.v1")
            await self._frame()  # session.created
        return self.ws

    def drop_socket(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    async def _frame(self) -> dict[str, Any]:
        assert self.ws is not None
        frame: dict[str, Any] = orjson.loads(await self.ws.recv())
        return frame

    def marker(self, action: str) -> str:
        self.n += 1
        return f"soak-{self.index}-{self.n}-{action}"

    def _create(self, marker: str, model: str = "gpt-4o-mini") -> bytes:
        return orjson.dumps(
            {
                "type": "response.create",
                "request_id": marker,
                "model": model,
                "messages": [{"role": "user", "content": marker}],
            }
        )

    def _after(self) -> int:
        return random.randint(2, self.args["stop_after_max"])

    # --- actions -------------------------------------------------------------------------

    async def ws_stream(self, marker: str) -> None:
        ws = await self.socket()
        ws.send(self._create(marker))
        await self._to_done(expect="completed")

    async def ws_stop(self, marker: str) -> None:
        ws = await self.socket()
        ws.send(self._create(marker))
        after, cancelled = self._after(), False
        while True:
            frame = await self._frame()
            kind = frame["type"]
            if kind == "response.output_text.delta" and frame["seq"] >= after and not cancelled:
                cancel = {"type": "response.cancel", "response_id": frame["response_id"]}
                ws.send(orjson.dumps(cancel))
                cancelled = True
            elif kind == "response.done":
                _expect(frame["status"] == "cancelled", frame)
                return
            elif kind == "error":
                raise _Unexpected(repr(frame)[:200])

    async def ws_resume(self, marker: str) -> None:
        ws = await self.socket()
        ws.send(self._create(marker))
        after = self._after()
        response_id, epoch, last_seq = "", 0, 0
        while last_seq < after:
            frame = await self._frame()
            if frame["type"] == "response.created":
                response_id, epoch = frame["response_id"], frame["epoch"]
            elif frame["type"] == "response.output_text.delta":
                last_seq = frame["seq"]
            elif frame["type"] in ("response.done", "error"):
                raise _Unexpected(f"ended before the disconnect: {repr(frame)[:200]}")
        self.drop_socket()  # the connection drops mid-answer
        ws = await self.socket()
        resume = {"type": "response.resume", "response_id": response_id, "epoch": epoch}
        ws.send(orjson.dumps({**resume, "last_seq": last_seq}))
        frame = await self._frame()
        _expect(frame["type"] == "resume.result" and frame["recovered"], frame)
        await self._to_done(expect="completed", after_seq=last_seq)

    async def _to_done(self, *, expect: str, after_seq: int | None = None) -> None:
        while True:
            frame = await self._frame()
            kind = frame["type"]
            if kind == "response.output_text.delta" and after_seq is not None:
                # A resumed stream continues right after the last seq seen: no gap, no repeat.
                _expect(frame["seq"] > after_seq, frame)
                after_seq = frame["seq"]
            elif kind == "response.done":
                _expect(frame["status"] == expect, frame)
                return
            elif kind == "error":
                raise _Unexpected(repr(frame)[:200])

    async def sse(self, marker: str) -> None:
        await self._sse(marker, stop=False)

    async def sse_stop(self, marker: str) -> None:
        await self._sse(marker, stop=True)

    async def _sse(self, marker: str, *, stop: bool) -> None:
        body = {"model": "gpt-4o-mini", "stream": True}
        body["messages"] = [{"role": "user", "content": marker}]
        exchange = await self.client.post(self.http_url, orjson.dumps(body), self.headers)
        after, tokens, done = self._after(), 0, False
        try:
            _expect(exchange.status == 200, {"status": exchange.status})
            lines = LineDecoder()
            while chunk := await exchange.read():
                for line in lines.feed(chunk):
                    if line == b"data: [DONE]":
                        done = True
                    elif b'"content":"' in line and b'"content":""' not in line:
                        tokens += 1
                        if stop and tokens >= after:
                            exchange.abort()  # hang up now, as a browser's aborted fetch does
                            return
        finally:
            exchange.close()
        _expect(done, {"tokens": tokens, "done": done})

    async def bad_ws_json(self, marker: str) -> None:
        ws = await self.socket()
        ws.send(b'{"type": "response.create", "request_id": "' + marker.encode())
        frame = await self._frame()
        _expect(frame["type"] == "error" and frame["error"]["code"] == "invalid_message", frame)

    async def bad_ws_model(self, marker: str) -> None:
        ws = await self.socket()
        ws.send(self._create(marker, _UNKNOWN_MODEL))
        frame = await self._frame()
        error = frame.get("error") or {}
        _expect(
            frame["type"] == "error"
            and error.get("code") == "model_not_found"
            and error.get("request_id") == marker,
            frame,
        )

    async def bad_http_json(self, marker: str) -> None:
        await self._bad_http(b'{"model": "gpt-4o-mini", "messages": [' + marker.encode())

    async def bad_http_model(self, marker: str) -> None:
        body = {"model": _UNKNOWN_MODEL, "stream": True}
        body["messages"] = [{"role": "user", "content": marker}]
        await self._bad_http(orjson.dumps(body))

    async def _bad_http(self, body: bytes) -> None:
        exchange = await self.client.post(self.http_url, body, self.headers)
        try:
            reply = b""
            while chunk := await exchange.read():
                reply += chunk
            status = exchange.status
        finally:
            exchange.close()
        code = orjson.loads(reply).get("error", {}).get("code") if reply.startswith(b"{") else None
        _expect(400 <= status < 500 and bool(code), {"status": status, "body": reply[:200]})


def _expect(ok: bool, got: Any) -> None:
    if not ok:
        raise _Unexpected(repr(got)[:200])


async def _run_worker(
    worker: _Worker,
    deadline: float,
    counts: dict[str, Counter[str]],
    markers: dict[str, str],
    problems: list[str],
) -> None:
    names = [name for name, _ in ACTIONS]
    weights = [weight for _, weight in ACTIONS]
    try:
        while time.monotonic() < deadline:
            action = random.choices(names, weights)[0]
            marker = worker.marker(action)
            counts[action]["started"] += 1
            if action in UPSTREAM_EXPECTED:
                markers[marker] = action
            try:
                await asyncio.wait_for(getattr(worker, action)(marker), _ANSWER_TIMEOUT_S)
                counts[action]["ended"] += 1
            except TimeoutError:
                counts[action]["unended"] += 1
                problems.append(f"{marker}: no answer in {_ANSWER_TIMEOUT_S:g} s")
                worker.drop_socket()
            except (_Unexpected, _lean_ws.ConnectionClosed, OSError) as exc:
                counts[action]["unexpected"] += 1
                problems.append(f"{marker}: {type(exc).__name__}: {exc}"[:300])
                worker.drop_socket()
    finally:
        worker.drop_socket()


async def _upstream(fake: str, since: int, markers: dict[str, str]) -> dict[str, Any]:
    """How the fake saw each marked request end, waiting a grace period for stragglers."""
    records = await _driver.fake_records(fake, since, markers, _GRACE_S)
    outcomes: dict[str, Counter[str]] = {}
    wrong: list[str] = []
    for marker, action in markers.items():
        record = records.get(marker)
        outcome = record["outcome"] if record else "missing"
        outcomes.setdefault(action, Counter())[outcome] += 1
        if outcome != UPSTREAM_EXPECTED[action]:
            wrong.append(f"{marker}: upstream {outcome}")
    return {
        "outcomes": {action: dict(c) for action, c in outcomes.items()},
        "still_running": sum(1 for r in records.values() if r["outcome"] == "pending"),
        "wrong": wrong,
    }


async def _main(args: dict[str, Any]) -> dict[str, Any]:
    random.seed(args.get("seed", 14))
    client = LeanClient()
    counts: dict[str, Counter[str]] = {name: Counter() for name, _ in ACTIONS}
    markers: dict[str, str] = {}
    problems: list[str] = []
    started = time.monotonic()
    deadline = started + args["duration_s"]
    workers = [_Worker(i, args, client) for i in range(args["workers"])]

    async def staggered(worker: _Worker) -> None:
        await asyncio.sleep(random.uniform(0, 1.0))
        await _run_worker(worker, deadline, counts, markers, problems)

    results = await asyncio.gather(*(staggered(w) for w in workers), return_exceptions=True)
    elapsed = time.monotonic() - started
    await client.aclose()
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    upstream = await _upstream(args["fake_url"], args["since"], markers)
    return {
        "elapsed_s": elapsed,
        "actions": {name: dict(c) for name, c in counts.items()},
        "problems": problems[:20],
        "problem_count": len(problems),
        "worker_failures": failures[:5],
        "upstream": upstream,
    }


if __name__ == "__main__":
    _driver.run(_main)
