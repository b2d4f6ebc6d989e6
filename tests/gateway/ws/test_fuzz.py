"""Property-based fuzzing of the WebSocket protocol over a real socket.

Hypothesis writes scripts of client frames -- well-formed messages with random
fields, wrong types, unknown types, random JSON, deep nesting, huge strings,
binary frames, and create/cancel/resume interleavings over a small pool of ids
so that they collide -- and each script is played against one real gateway
(uvicorn on a loopback port, run in a portal thread so that hypothesis can drive
it from a plain test function). Invariants, after every script:

- the server is alive: a ``ping`` on the fuzzed socket is answered (unless the
  server closed it with a documented close code), and a bystander session opened
  before the run still answers;
- every ``response.create`` the server accepted ended with ``response.done``;
- nothing is logged at error level (no exception escaped the app);
  every refused one got an ``error`` naming its ``request_id``;

and after the whole run: no response still running, no producer task, only the
bystander's socket left.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import structlog
import structlog.testing
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.gateway.ws import _support as ws

MAX_MESSAGE_BYTES = 4096
# Close codes the protocol documents for a misbehaving client.
DOCUMENTED_CLOSES = {1007, 1008, 1009}
_pings = itertools.count()

ids = st.sampled_from(["r0", "r1", "r2", "resp_x", ""]) | st.text(max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
roles = st.sampled_from(["user", "system", "assistant", "tool", "nobody", 3])
contents = st.text(max_size=40) | st.just("x" * (MAX_MESSAGE_BYTES + 10)) | json_values


@st.composite
def creates(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "response.create",
        "request_id": draw(ids),
        "messages": draw(
            st.lists(st.fixed_dictionaries({"role": roles, "content": contents}), max_size=3)
            | json_values
        ),
    }
    optional = {
        "model": st.sampled_from(["demo/echo", "demo/lorem", "nope/x", "", None]) | json_values,
        "agent": st.sampled_from(["assistant", "missing", None]),
        "conversation_id": st.sampled_from(["c1", "c2"]),
        "params": st.fixed_dictionaries({}, optional={"max_tokens": json_values}),
        "event_id": st.text(max_size=10),
        "surprise": json_values,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            message[key] = draw(strategy)
    return message


cancels = st.fixed_dictionaries(
    {"type": st.just("response.cancel")},
    optional={"response_id": ids, "request_id": ids, "event_id": st.text(max_size=4)},
)
resumes = st.fixed_dictionaries(
    {
        "type": st.just("response.resume"),
        "response_id": ids,
        "epoch": st.integers(-1, 2**40) | json_values,
        "last_seq": st.integers(-5, 50) | json_values,
    }
)
updates = st.fixed_dictionaries(
    {"type": st.just("session.update"), "session": json_values | st.just({"model": "demo/echo"})}
)
others = st.fixed_dictionaries(
    {"type": st.text(max_size=20) | json_values}, optional={"request_id": ids}
)
text_frames = (creates() | cancels | resumes | updates | others | json_values).map(json.dumps)
raw_frames = (
    text_frames
    | st.text(max_size=60)
    | st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
    | st.binary(max_size=64)
)
scripts = st.lists(raw_frames, min_size=1, max_size=12)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture(scope="module")
def gateway(portal: BlockingPortal) -> Iterator[ws.Gateway]:
    config = ws.settings(
        max_message_bytes=MAX_MESSAGE_BYTES,
        resume_window_ms=0,
        demo_token_delay_ms=1,
        message_burst=1000,
        messages_per_second=1000,
    )
    with portal.wrap_async_context_manager(ws.gateway(config)) as gw:
        yield gw


async def _play(gw: ws.Gateway, script: list[str | bytes]) -> None:
    client = await gw.open()
    created: dict[str, str] = {}  # response_id -> request_id
    refused: set[str] = set()
    closed_with: int | None = None
    try:
        for frame in script:
            await client.send_raw(frame)
        ts = next(_pings)
        await client.send("ping", ts=ts)
        ponged = False
        with anyio.fail_after(10):
            while not (ponged and not created):
                frame = await client._read()
                kind = frame.get("type")
                if kind == "response.created":
                    created[frame["response_id"]] = frame["request_id"]
                elif kind == "response.done":
                    created.pop(frame["response_id"], None)
                elif kind == "error" and frame["error"].get("request_id"):
                    refused.add(frame["error"]["request_id"])
                elif kind == "pong" and frame["ts"] == ts:
                    ponged = True
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "the server dropped the socket without a close frame"
        closed_with = exc.rcvd.code
        assert closed_with in DOCUMENTED_CLOSES, closed_with
    finally:
        await client.aclose()
    if closed_with is None:
        assert not created, f"accepted responses without response.done: {created}"


async def _bystander_answers(client: ws.Client) -> None:
    ts = next(_pings)
    await client.send("ping", ts=ts)
    assert (await client.next("pong", lambda f: f["ts"] == ts))["ts"] == ts


async def _settled(gw: ws.Gateway) -> None:
    manager = gw.manager
    with anyio.fail_after(10):
        await manager.wait_for(
            lambda: (
                manager.active_responses == 0
                and manager.producer_tasks == 0
                and manager.sessions == 1
            )  # the bystander's
        )


@pytest.mark.timeout(240)
def test_random_client_frames_never_break_the_server(
    portal: BlockingPortal, gateway: ws.Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)
    bystander = portal.call(gateway.open)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(scripts)
    def play(script: list[str | bytes]) -> None:
        portal.call(_play, gateway, script)
        portal.call(_bystander_answers, bystander)

    try:
        with structlog.testing.capture_logs() as gateway_logs:
            play()
            portal.call(_settled, gateway)
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    portal.call(bystander.aclose)
    # Nothing the clients sent made the server fail (e.g. "Exception in ASGI application").
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [e for e in gateway_logs if e["log_level"] in ("error", "critical")] == []
