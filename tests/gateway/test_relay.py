"""The relay: every event case and every ending, over a router with scripted providers.

The encoder here records what the relay asks of it; the SSE and WebSocket encoders
have their own tests below and in the socket suites (tests/gateway/http, ws).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
import pytest
from starlette.types import Message

from gateway.agents import Prepared
from gateway.errors import (
    GatewayError,
    InternalError,
    ServerDraining,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.http._chunks import ChunkEncoder, ChunkWriter
from gateway.providers.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from gateway.relay import Ending, Relay
from gateway.router import Route, Router, Target
from gateway.settings import load_settings
from gateway.telemetry import ChatSummary
from sessions import Reason, Status
from tests.gateway.test_router import FakeRegistry, ScriptedProvider, Step

pytestmark = pytest.mark.anyio

ROUTE = Route("m", (Target("openai", "main"),))
REQUEST = ChatRequest("m", (ChatMessage("system", "be brief"), ChatMessage("user", "hello")))


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The summary lines emitted, as their fields."""
    lines: list[dict[str, Any]] = []
    monkeypatch.setattr(ChatSummary, "emit", lambda self: lines.append(self.fields()))
    yield lines


class Crash(Exception):
    """A bug inside a provider (not an upstream failure)."""


@dataclass
class Recorder:
    """An encoder that records; ``sends`` makes it an asynchronous one."""

    sends: bool = False
    calls: list[Any] = field(default_factory=list)
    written: list[Any] = field(default_factory=list)  # what an async write completed
    block_ending: anyio.Event | None = None  # ended() waits for it (a slow client)

    async def opened(self, target: Target) -> None:
        self.calls.append(("opened", target))

    def event(self, event: StreamEvent) -> Awaitable[object] | None:
        self.calls.append(event)
        if self.sends:
            return self._write(event)
        return None

    async def _write(self, event: StreamEvent) -> None:
        await anyio.lowlevel.checkpoint()
        self.written.append(event)

    async def ended(self, ending: Ending) -> Ending:
        if self.block_ending is not None:
            await anyio.lowlevel.checkpoint()  # an await that a cancellation would break
            await self.block_ending.wait()
        self.calls.append(("ended", ending))
        return ending

    @property
    def ending(self) -> Ending:
        endings = [c[1] for c in self.calls if isinstance(c, tuple) and c[0] == "ended"]
        assert len(endings) == 1
        ending: Ending = endings[0]
        return ending


def relay_for(*steps: Step, log_content: bool = False, **settings: Any) -> Relay:
    return relay_over(ScriptedProvider("openai", *steps), log_content=log_content, **settings)


def relay_over(
    provider: ScriptedProvider, *, log_content: bool = False, clock: Any = None, **settings: Any
) -> Relay:
    router = Router(
        load_settings(**settings),
        FakeRegistry({"openai": provider}),
        **({"clock": clock} if clock is not None else {}),
    )
    summary = ChatSummary("req-1", "http", "alice", "m", stream=True)
    prepared = Prepared(route=ROUTE, request=REQUEST, agent=None)
    return Relay(router, prepared, summary, log_content=log_content)


@pytest.mark.parametrize("sends", [False, True], ids=["sync", "async"])
async def test_every_event_reaches_the_encoder_in_order_then_one_ending(
    sends: bool, emitted: list[dict[str, Any]]
) -> None:
    events = [TextDelta("a"), TextDelta("b"), Finish("stop", Usage(3, 2))]
    encoder = Recorder(sends=sends)
    ending = await relay_for(Step(events=events)).run(encoder)
    assert encoder.calls[0] == ("opened", Target("openai", "main"))
    assert encoder.calls[1:4] == events
    assert ending == Ending(Status.COMPLETED, None, Finish("stop", Usage(3, 2)))
    assert encoder.ending == ending
    if sends:
        assert encoder.written == events  # each write awaited before the next event
    [line] = emitted
    assert line["status"] == "ok"
    assert (line["provider"], line["target_model"]) == ("openai", "main")
    assert line["finish_reason"] == "stop"
    assert (line["input_tokens"], line["output_tokens"]) == (3, 2)
    assert line["ttft_ms"] is not None
    assert line["error_code"] is None
    assert "prompt" not in line and "completion" not in line


async def test_time_to_first_token_is_the_first_output_not_a_bare_finish(
    emitted: list[dict[str, Any]],
) -> None:
    encoder = Recorder()
    ending = await relay_for(Step(events=[Finish("stop")])).run(encoder)
    assert ending.status is Status.COMPLETED
    assert encoder.calls[1] == Finish("stop")
    [line] = emitted
    assert line["ttft_ms"] is None  # nothing was shown to anybody


@pytest.mark.parametrize(
    ("reason", "status", "why", "summary_status"),
    [
        ("stop", Status.COMPLETED, None, "ok"),
        ("content_filter", Status.COMPLETED, None, "ok"),
        ("length", Status.INCOMPLETE, Reason.MAX_TOKENS, "incomplete"),
        ("error", Status.FAILED, Reason.UPSTREAM_ERROR, "error"),
    ],
)
async def test_finish_reason_to_status(
    reason: Any, status: Status, why: str | None, summary_status: str, emitted: list[Any]
) -> None:
    ending = await relay_for(Step(events=[TextDelta("a"), Finish(reason)])).run(Recorder())
    assert (ending.status, ending.reason, ending.error) == (status, why, None)
    assert emitted[0]["status"] == summary_status
    assert emitted[0]["finish_reason"] == reason


async def test_a_stream_without_finish_is_cut_short(emitted: list[dict[str, Any]]) -> None:
    ending = await relay_for(Step(events=[TextDelta("a")])).run(Recorder())
    assert (ending.status, ending.reason) == (Status.INCOMPLETE, Reason.UPSTREAM_ERROR)
    assert isinstance(ending.error, UpstreamError)
    assert emitted[0]["status"] == "incomplete"
    assert emitted[0]["error_code"] == "upstream_error"


async def test_failure_before_the_first_event_never_opens_the_encoder(
    emitted: list[dict[str, Any]],
) -> None:
    failure = UpstreamUnavailable("down", provider="openai", upstream_status=503)
    encoder = Recorder()
    ending = await relay_for(Step(open_error=failure)).run(encoder)
    assert [c[0] for c in encoder.calls] == ["ended"]  # no "opened"
    assert (ending.status, ending.error) == (Status.FAILED, failure)
    assert emitted[0]["status"] == "error"
    assert emitted[0]["error_code"] == "upstream_unavailable"
    # Nobody answered, but the summary (and its metrics) name the provider that failed.
    assert (emitted[0]["provider"], emitted[0]["target_model"]) == ("openai", None)


async def test_upstream_failure_after_the_first_token(emitted: list[dict[str, Any]]) -> None:
    failure = UpstreamError("reset", provider="openai")
    encoder = Recorder()
    ending = await relay_for(Step(events=[TextDelta("a"), failure])).run(encoder)
    assert encoder.calls[1] == TextDelta("a")
    assert (ending.status, ending.reason, ending.error) == (
        Status.FAILED,
        Reason.UPSTREAM_ERROR,
        failure,
    )
    assert failure.__traceback__ is None  # the ending keeps no frames alive
    assert emitted[0]["status"] == "error"
    assert emitted[0]["ttft_ms"] is not None


async def test_a_bug_is_an_internal_error_without_its_text(emitted: list[Any]) -> None:
    class Broken(ScriptedProvider):
        async def _events(self, step: Step) -> Any:
            yield TextDelta("a")
            raise Crash("secret sk-123 in a message")

    ending = await relay_over(Broken("openai")).run(Recorder())
    assert isinstance(ending.error, InternalError)
    assert "sk-123" not in ending.error.message
    assert emitted[0]["error_code"] == "internal_error"


async def test_total_timeout_after_the_first_token(emitted: list[dict[str, Any]]) -> None:
    class Slow(ScriptedProvider):
        async def _events(self, step: Step) -> Any:
            yield TextDelta("a")
            await anyio.sleep(1)  # past the total limit (a scripted stream has no socket to cut)
            yield TextDelta("b")

    encoder = Recorder()
    with anyio.fail_after(5):
        ending = await relay_over(Slow("openai"), timeouts={"total_s": 0.2}).run(encoder)
    assert encoder.calls[1:] == [TextDelta("a"), ("ended", ending)]
    assert isinstance(ending.error, UpstreamTimeout)
    assert ending.status is Status.FAILED
    assert emitted[0]["error_code"] == "upstream_timeout"


@pytest.mark.parametrize(("step_s", "attempts"), [(0, 2), (31, 1)])
async def test_the_delivery_deadline_runs_on_the_injected_clock(
    step_s: float, attempts: int, emitted: list[dict[str, Any]]
) -> None:
    now = [100.0]
    calls: list[float] = []

    class Slow(ScriptedProvider):
        @asynccontextmanager
        async def stream(self, request: ChatRequest) -> AsyncIterator[AsyncIterator[StreamEvent]]:
            calls.append(now[0])
            now[0] += step_s  # an attempt that took this long, without real waiting
            raise UpstreamUnavailable("down", provider="openai", retryable=True)
            yield  # pragma: no cover

    relay = relay_over(Slow("openai"), clock=lambda: now[0], timeouts={"total_s": 30})
    ending = await relay.run(Recorder())
    assert isinstance(ending.error, UpstreamUnavailable)
    # Past the total limit by the injected clock, the retry is not made.
    assert len(calls) == attempts


async def test_abort_then_cancel_is_a_client_stop(emitted: list[dict[str, Any]]) -> None:
    provider = ScriptedProvider("openai", Step(events=[TextDelta("a")], hang=True))
    relay = relay_over(provider)
    encoder = Recorder()
    async with anyio.create_task_group() as tg:
        tg.start_soon(relay.run, encoder)
        with anyio.fail_after(2):
            await provider.hanging.wait()
        relay.abort()
        tg.cancel_scope.cancel()
    assert (encoder.ending.status, encoder.ending.reason) == (
        Status.CANCELLED,
        Reason.CLIENT_CANCELLED,
    )
    assert encoder.ending.error is None  # nothing to tell a client that left
    assert provider.exits and provider.exits[0] is not None  # the stream was closed
    assert emitted[0]["status"] == "cancelled"


async def test_cancel_from_outside_is_a_shutdown_said_under_shield(
    emitted: list[dict[str, Any]],
) -> None:
    provider = ScriptedProvider("openai", Step(events=[TextDelta("a")], hang=True))
    relay = relay_over(provider)
    release = anyio.Event()
    encoder = Recorder(block_ending=release)
    async with anyio.create_task_group() as tg:
        tg.start_soon(relay.run, encoder)
        with anyio.fail_after(2):
            await provider.hanging.wait()
        tg.cancel_scope.cancel()  # no abort: the server is going away
        release.set()  # ended() still awaits: a checkpoint that only a shield survives
    ending = encoder.ending  # the ending's awaits ran despite the cancellation
    assert (ending.status, ending.reason) == (Status.INCOMPLETE, Reason.SERVER_SHUTDOWN)
    assert isinstance(ending.error, ServerDraining)
    assert emitted[0]["status"] == "incomplete"
    assert emitted[0]["error_code"] == "server_draining"


async def test_content_logging_records_prompt_and_completion(emitted: list[Any]) -> None:
    events = [TextDelta("hel"), TextDelta("lo"), Finish("stop")]
    encoder = Recorder()
    await relay_for(Step(events=events), log_content=True).run(encoder)
    assert encoder.calls[1:4] == events  # the transcript passes every event on
    assert emitted[0]["prompt"] == "hello"
    assert emitted[0]["completion"] == "hello"


async def test_the_summary_is_emitted_once_even_when_the_encoder_fails(
    emitted: list[Any],
) -> None:
    class Failing(Recorder):
        async def ended(self, ending: Ending) -> Ending:
            raise OSError("client gone")

    with pytest.raises(OSError):
        await relay_for(Step()).run(Failing())
    assert len(emitted) == 1


# --- the SSE encoder ------------------------------------------------------------------


@dataclass
class Asgi:
    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]

    def events(self) -> list[Any]:
        out: list[Any] = []
        for body in self.bodies:
            for block in body.split(b"\n\n"):
                if block:
                    data = block.removeprefix(b"data: ")
                    out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
        return out


def chunk_encoder(asgi: Asgi, include_usage: bool = False) -> ChunkEncoder:
    return ChunkEncoder(asgi.send, ChunkWriter("chatcmpl-1", 1, "m", include_usage), "chatcmpl-1")


async def run_sse(*steps: Step, include_usage: bool = False) -> Asgi:
    asgi = Asgi()
    await relay_for(*steps).run(chunk_encoder(asgi, include_usage))
    return asgi


def _deltas(events: list[Any]) -> list[Any]:
    return [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]


async def test_sse_role_rides_with_the_first_token_and_done_with_the_finish() -> None:
    events = [TextDelta("a"), TextDelta("b"), Finish("length", Usage(1, 2))]
    asgi = await run_sse(Step(events=events), include_usage=True)
    assert asgi.messages[0]["status"] == 200
    assert len(asgi.bodies) == 3  # role+a, b, finish+usage+[DONE]
    assert asgi.messages[-1]["more_body"] is False
    out = asgi.events()
    assert _deltas(out) == [
        {"role": "assistant", "content": ""},
        {"content": "a"},
        {"content": "b"},
        {},
    ]
    assert out[3]["choices"][0]["finish_reason"] == "length"
    assert out[4]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert out[-1] == "[DONE]"


async def test_sse_a_bare_finish_still_sends_the_role_chunk() -> None:
    asgi = await run_sse(Step(events=[Finish("stop")]))
    assert len(asgi.bodies) == 1
    out = asgi.events()
    assert _deltas(out) == [{"role": "assistant", "content": ""}, {}]
    assert out[-1] == "[DONE]"


async def test_sse_failure_before_the_first_token_is_an_http_status() -> None:
    failure = UpstreamUnavailable("down", provider="openai", retry_after_ms=1500)
    asgi = await run_sse(Step(open_error=failure))
    start = asgi.messages[0]
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"2"
    assert headers[b"x-request-id"] == b"chatcmpl-1"
    assert orjson.loads(asgi.bodies[0])["error"]["code"] == "upstream_unavailable"


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([TextDelta("a"), UpstreamError("reset", provider="openai")], "upstream_error"),
        ([TextDelta("a")], "upstream_error"),  # cut short without a finish
    ],
    ids=["upstream failure", "no finish"],
)
async def test_sse_every_early_end_is_an_error_event_then_done(
    events: list[Any], code: str
) -> None:
    asgi = await run_sse(Step(events=events))
    out = asgi.events()
    assert out[-1] == "[DONE]"
    assert out[-2]["error"]["code"] == code
    assert set(out[-2]["error"]) == {"message", "type", "code", "param"}
    assert asgi.messages[-1]["more_body"] is False


async def test_sse_shutdown_mid_answer_is_an_error_event_then_done() -> None:
    provider = ScriptedProvider("openai", Step(events=[TextDelta("a")], hang=True))
    asgi = Asgi()
    async with anyio.create_task_group() as tg:
        tg.start_soon(relay_over(provider).run, chunk_encoder(asgi))
        with anyio.fail_after(2):
            await provider.hanging.wait()
        tg.cancel_scope.cancel()
    out = asgi.events()
    assert out[-2]["error"]["code"] == "server_draining"
    assert out[-1] == "[DONE]"


async def test_sse_after_a_hang_up_nothing_more_is_sent() -> None:
    provider = ScriptedProvider("openai", Step(events=[TextDelta("a")], hang=True))
    asgi = Asgi()
    relay = relay_over(provider)
    async with anyio.create_task_group() as tg:
        tg.start_soon(relay.run, chunk_encoder(asgi))
        with anyio.fail_after(2):
            await provider.hanging.wait()
        sent = len(asgi.messages)
        relay.abort()
        tg.cancel_scope.cancel()
    assert len(asgi.messages) == sent


def test_error_event_shape() -> None:
    err: GatewayError = UpstreamTimeout("slow", provider="openai")
    assert orjson.loads(ChunkWriter.error(err).removeprefix(b"data: "))["error"]["code"] == (
        "upstream_timeout"
    )


async def test_sse_reasoning_and_tool_call_pieces(emitted: list[Any]) -> None:
    events = [
        ReasoningDelta("think"),
        ToolCallStart(0, "call_1", "lookup"),
        ToolCallDelta(0, '{"q":'),
        ToolCallDelta(0, '"x"}'),
        Finish("tool_calls"),
    ]
    asgi = await run_sse(Step(events=events))
    out = asgi.events()
    assert _deltas(out) == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "think"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]},
        {},
    ]
    assert len(asgi.bodies) == 5  # the role chunk rode with the first piece
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert out[-1] == "[DONE]"
    assert emitted[0]["ttft_ms"] is not None  # reasoning is output too


async def test_the_transcript_passes_every_event_kind_on(emitted: list[Any]) -> None:
    events = [
        ReasoningDelta("r"),
        TextDelta("a"),
        ToolCallStart(0, "c", "f"),
        ToolCallDelta(0, "{}"),
        Finish("stop"),
    ]
    encoder = Recorder()
    await relay_for(Step(events=events), log_content=True).run(encoder)
    assert encoder.calls[1:6] == events
    assert emitted[0]["completion"] == "a"
