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
- every ``response.create`` the server accepted ended with ``response.done``, and
  every create the script sent with a usable ``request_id`` ended either so or in
  an ``error`` naming that id;
- a text frame that is not UTF-8 closes its socket 1007 (that close code is the
  whole invariant for such a socket) and nothing else;
- nothing is logged at error level (no exception escaped the app).

After the whole run: no response still running, no producer task, only the
bystander's socket left, every request the fake upstream received (the
``openai/...`` model) ended, and the event loop holds no more tasks than before
the run (``gateway_event_loop_tasks`` on ``/metrics``).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson
import pytest
import structlog
import structlog.testing
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.fakes import FakeUpstream, Scenario
from tests.gateway.test_metrics import scrape, value
from tests.gateway.ws import _support as ws

MAX_MESSAGE_BYTES = 4096
# Close codes the protocol documents for a misbehaving client.
DOCUMENTED_CLOSES = {1007, 1008, 1009}
INVALID_UTF8 = 1007
UVICORN_INVALID_UTF8 = "Invalid UTF-8 sequence received from client."
# Tasks a run may leave above the count before it without leaking: the scrape's own
# request and the keep-alive of the client that makes it can differ by a task or two.
TASK_ALLOWANCE = 3
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
        "model": st.sampled_from(
            ["demo/echo", "demo/lorem", "openai/gpt-4o-mini", "nope/x", "", None]
        )
        | json_values,
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


@dataclass(frozen=True, slots=True)
class NotUtf8:
    """A *text* frame whose payload is not UTF-8 (a str frame always is)."""

    payload: bytes


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return True
    return False


not_utf8 = (
    st.binary(min_size=1, max_size=32).filter(_not_utf8)
    | st.binary(max_size=16).map(lambda head: b'{"type": "ping", "ts": "' + head + b'\xff"}')
).map(NotUtf8)

Frame = str | bytes | NotUtf8
text_frames = (creates() | cancels | resumes | updates | others | json_values).map(json.dumps)
raw_frames: st.SearchStrategy[Frame] = (
    text_frames
    | st.text(max_size=60)
    | st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
    | st.binary(max_size=64)
    | not_utf8
)
scripts = st.lists(raw_frames, min_size=1, max_size=12)


def _create_id(frame: Frame) -> str | None:
    """The request id of a ``response.create`` frame, if it has one the server can echo."""
    if not isinstance(frame, str):
        return None
    try:
        # The server's parser: json.loads would also read what the server refuses
        # unread (``Infinity``, which json.dumps writes for an infinite float).
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") != "response.create":
        return None
    request_id = message.get("request_id")
    # The protocol's ids are 1..128 characters; nothing else is echoed.
    if isinstance(request_id, str) and 0 < len(request_id) <= 128:
        return request_id
    return None


def _oversized(frame: Frame) -> bool:
    data = frame.payload if isinstance(frame, NotUtf8) else frame
    return len(data.encode() if isinstance(data, str) else data) > MAX_MESSAGE_BYTES


def _expected_close(script: list[Frame]) -> int | None:
    """The close code a script must end in, when its frames decide it (0: any documented).

    A frame that is not UTF-8 ends the socket 1007. With an oversized frame anywhere
    in the script the code may be 1009 instead: uvicorn parses every frame of a read
    before acting on the first, and the size limit fails the connection at once.
    """
    if not any(isinstance(frame, NotUtf8) for frame in script):
        return None
    return 0 if any(_oversized(frame) for frame in script) else INVALID_UTF8


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture(scope="module")
def upstream(portal: BlockingPortal) -> Iterator[tuple[FakeUpstream, dict[str, Any]]]:
    fake = FakeUpstream(Scenario(tokens=["Hello", ",", " world", "!"]))
    with portal.wrap_async_context_manager(ws.fake_upstream("openai", fake)) as pair:
        yield pair


@pytest.fixture(scope="module")
def gateway(
    portal: BlockingPortal, upstream: tuple[FakeUpstream, dict[str, Any]]
) -> Iterator[ws.Gateway]:
    config = ws.settings(
        max_message_bytes=MAX_MESSAGE_BYTES,
        resume_window_ms=0,
        demo_token_delay_ms=1,
        message_burst=1000,
        messages_per_second=1000,
        **upstream[1],
    )
    with portal.wrap_async_context_manager(ws.gateway(config)) as gw:
        yield gw


async def _send(client: ws.Client, frame: Frame) -> None:
    if isinstance(frame, NotUtf8):
        await client.ws.send(frame.payload, text=True)
    else:
        await client.send_raw(frame)


async def _play(gw: ws.Gateway, script: list[Frame]) -> None:
    client = await gw.open()
    created: dict[str, str] = {}  # response_id -> request_id
    finished: set[str] = set()  # request ids whose response.done arrived
    refused: set[str] = set()
    closed_with: int | None = None
    try:
        for frame in script:
            await _send(client, frame)
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
                    request_id = created.pop(frame["response_id"], None)
                    if request_id is not None:
                        finished.add(request_id)
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
    expected_close = _expected_close(script)
    if expected_close == INVALID_UTF8:
        assert closed_with == INVALID_UTF8, (closed_with, script)
    elif expected_close == 0:
        assert closed_with in DOCUMENTED_CLOSES, (closed_with, script)
    if closed_with is None:
        assert not created, f"accepted responses without response.done: {created}"
        sent = {rid for frame in script if (rid := _create_id(frame)) is not None}
        unanswered = sent - finished - refused
        assert not unanswered, f"creates with neither response.done nor error: {unanswered}"


async def _bystander_answers(client: ws.Client) -> None:
    ts = next(_pings)
    await client.send("ping", ts=ts)
    assert (await client.next("pong", lambda f: f["ts"] == ts))["ts"] == ts


async def _settled(gw: ws.Gateway, upstream: FakeUpstream) -> None:
    manager = gw.manager
    with anyio.fail_after(10):
        await manager.wait_for(
            lambda: (
                manager.active_responses == 0
                and manager.producer_tasks == 0
                and manager.sessions == 1
            )  # the bystander's
        )
        # Every stream the fake upstream served saw its end (completed or cut off).
        for record in list(upstream.requests):
            await record.ended.wait()


async def _loop_tasks(gw: ws.Gateway) -> float:
    async with httpx.AsyncClient(base_url=gw.base) as http:
        return value(await scrape(http), "gateway_event_loop_tasks")


_warm_up = {
    "type": "response.create",
    "request_id": "warm-up",
    "messages": [{"role": "user", "content": "hi"}],
    "model": "openai/gpt-4o-mini",
}


@pytest.mark.timeout(240)
def test_random_client_frames_never_break_the_server(
    portal: BlockingPortal,
    gateway: ws.Gateway,
    upstream: tuple[FakeUpstream, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = upstream[0]
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)
    bystander = portal.call(gateway.open)
    # Warm-up through the fake (connection pool, lazy imports), then the baseline.
    portal.call(_play, gateway, [json.dumps(_warm_up)])
    portal.call(_settled, gateway, fake)
    tasks_before = portal.call(_loop_tasks, gateway)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(scripts)
    def play(script: list[Frame]) -> None:
        portal.call(_play, gateway, script)
        portal.call(_bystander_answers, bystander)

    try:
        with structlog.testing.capture_logs() as gateway_logs:
            play()
            portal.call(_settled, gateway, fake)
            tasks_after = portal.call(_loop_tasks, gateway)
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    portal.call(bystander.aclose)
    assert fake.active_streams == 0
    assert tasks_after <= tasks_before + TASK_ALLOWANCE, (tasks_before, tasks_after)
    # Nothing the clients sent made the server fail (e.g. "Exception in ASGI application").
    # uvicorn logs a client's invalid UTF-8 with a traceback at error level, as it closes
    # the socket 1007 (asserted above): that record is the protocol working, not a failure.
    failures = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.getMessage() != UVICORN_INVALID_UTF8
    ]
    assert failures == []
    assert [e for e in gateway_logs if e["log_level"] in ("error", "critical")] == []
