"""Load driver: resume a finished response with a full replay buffer on a new socket.

Per round: socket A creates a response (the fake streams ``tokens`` tokens, so
the buffer holds created + that many deltas + done) and reads it to the end,
then closes. Socket B measures a ping -> pong round trip (the baseline), then
sends ``response.resume`` with ``last_seq: 0`` and times ``resume.result``, the
first replayed frame and the replayed ``response.done``. With ``resume_url``
socket B connects there instead: another gateway instance sharing the session
store (Redis), which replays the response from the store, not from its memory.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import websockets

from bench import _driver
from bench.stats import summary


async def _connect(url: str, key: str) -> Any:
    ws = await websockets.connect(
        url,
        subprotocols=["chat-gateway.v1"],  # type: ignore[list-item]
        additional_headers={"authorization": f"Bearer {key}"},
        ping_interval=None,
        compression=None,
        max_size=None,
    )
    await ws.recv()  # session.created
    return ws


def _dumps(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


async def _main(args: dict[str, Any]) -> dict[str, Any]:
    url = args["url"].replace("http://", "ws://") + "/api/v1/ws"
    resume_url = args.get("resume_url", args["url"]).replace("http://", "ws://") + "/api/v1/ws"
    key = args["key"]
    pong_ms: list[float] = []
    result_ms: list[float] = []
    first_ms: list[float] = []
    done_ms: list[float] = []
    replayed_tokens: list[int] = []
    replayed_frames: list[int] = []
    failures: list[str] = []
    for round_ in range(args["rounds"]):
        marker = f"resume-{round_}"
        first = await _connect(url, key)
        create = {
            "type": "response.create",
            "request_id": marker,
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": marker}],
        }
        await first.send(_dumps(create))
        response_id, epoch = "", 0
        while True:
            frame = orjson.loads(await first.recv())
            if frame["type"] == "response.created":
                response_id, epoch = frame["response_id"], frame["epoch"]
            elif frame["type"] in ("response.done", "error"):
                break
        await first.close()

        second = await _connect(resume_url, key)
        sent = time.monotonic()
        await second.send(_dumps({"type": "ping", "ts": round_}))
        await second.recv()
        pong_ms.append((time.monotonic() - sent) * 1000)

        resume = {"type": "response.resume", "response_id": response_id, "epoch": epoch}
        resume["last_seq"] = 0
        sent = time.monotonic()
        await second.send(_dumps(resume))
        frame = orjson.loads(await second.recv())
        result_ms.append((time.monotonic() - sent) * 1000)
        if frame["type"] != "resume.result" or not frame["recovered"]:
            failures.append(repr(frame)[:200])
            await second.close()
            continue
        frames = tokens = 0
        last_seq = 0
        while True:
            frame = orjson.loads(await second.recv())
            now = time.monotonic()
            frames += 1
            if frames == 1:
                first_ms.append((now - sent) * 1000)
            if frame["type"] == "response.output_text.delta":
                tokens += frame["seq"] - last_seq
                last_seq = frame["seq"]
            if frame["type"] == "response.done":
                done_ms.append((now - sent) * 1000)
                break
        replayed_tokens.append(tokens)
        replayed_frames.append(frames)
        await second.close()
    return {
        "rounds": args["rounds"],
        "ping_pong_ms": summary(pong_ms),
        "resume_result_ms": summary(result_ms),
        "first_replayed_frame_ms": summary(first_ms),
        "replay_done_ms": summary(done_ms),
        "replayed_tokens": summary([float(t) for t in replayed_tokens]),
        "replayed_frames": summary([float(f) for f in replayed_frames]),
        "failures": failures[:5],
    }


if __name__ == "__main__":
    _driver.run(_main)
