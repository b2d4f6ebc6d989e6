"""Two managers sharing one real Redis: what the in-memory backend cannot do.

Each manager stands for one gateway instance (its own backend, instance id and
epoch), so every path here crosses Redis: claim, stream, pub/sub control.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from gateway.scaleout import codec
from gateway.scaleout.keys import Keys
from gateway.scaleout.redis_backend import RedisBackend
from sessions import (
    ConversationBusy,
    Delta,
    Done,
    FinishInfo,
    Response,
    SessionManager,
    Status,
)
from tests.redis_server import RedisServer
from tests.sessions._support import ListSink, Script, wait

pytestmark = pytest.mark.anyio

_prefixes = itertools.count()


@asynccontextmanager
async def pair(redis: RedisServer) -> AsyncIterator[tuple[SessionManager, SessionManager]]:
    async with instances(redis, 2) as (a, b):
        yield a, b


@asynccontextmanager
async def instances(redis: RedisServer, count: int) -> AsyncIterator[list[SessionManager]]:
    """``count`` managers, each an instance of its own, sharing one key prefix."""
    prefix = f"shared{next(_prefixes)}:"
    async with contextlib.AsyncExitStack() as stack:
        managers = []
        for _ in range(count):
            backend = RedisBackend(redis.url, window_s=5, prefix=prefix, lease_s=1.0)
            manager = SessionManager(resume_window_s=5, backend=backend)
            managers.append(await stack.enter_async_context(manager.running()))
        yield managers


async def test_resume_on_another_instance_gets_the_rest_exactly_once(
    redis_server: RedisServer,
) -> None:
    async with pair(redis_server) as (a, b):
        first = ListSink()
        on_a = a.open_session("alice", first)
        script = Script()
        response, _ = await a.create_response(on_a, "r", produce=script)
        script.feed("a", "b")
        await first.wait_for(lambda _: first.texts(response.id) == ["a", "b"])
        a.close_session(on_a)
        script.feed("c")
        await script.wait_emitted(3)

        second = ListSink()
        result = await b.resume(b.open_session("alice", second), response.id, response.epoch, 2)
        assert result.recovered and result.from_seq == 3
        script.feed("d", FinishInfo())
        done = await second.wait_done(response.id)
        assert first.texts(response.id) + second.texts(response.id) == ["a", "b", "c", "d"]
        assert second.seqs(response.id) == [3, 4, 5]
        assert done.status is Status.COMPLETED
        assert script.calls == 1


async def test_a_follower_elsewhere_keeps_the_detach_window_from_running(
    redis_server: RedisServer,
) -> None:
    async with pair(redis_server) as (a, b):
        on_a = a.open_session("alice", ListSink())
        script = Script()
        response, _ = await a.create_response(on_a, "r", produce=script)
        second = ListSink()
        await b.resume(b.open_session("alice", second), response.id, response.epoch, 0)
        # B told A it follows; A's own socket closing must not start the window.
        await a.wait_for(lambda: response.remote_followers == 1)
        a.close_session(on_a)
        assert response.deadline is None


async def test_cancel_on_another_instance_stops_the_owner_and_tells_both(
    redis_server: RedisServer,
) -> None:
    async with pair(redis_server) as (a, b):
        owner_sink = ListSink()
        on_a = a.open_session("alice", owner_sink)
        script = Script()
        response, _ = await a.create_response(on_a, "r", produce=script)
        script.feed("a")
        await script.wait_emitted(1)

        canceller = ListSink()
        await b.cancel(b.open_session("alice", canceller), response_id=response.id)
        await wait(script.exited)  # A's producer was cancelled: its upstream closed
        on_owner = await owner_sink.wait_done(response.id)
        on_canceller = await canceller.wait_done(response.id)
        assert on_owner.status is Status.CANCELLED
        assert (on_canceller.status, on_canceller.seq) == (Status.CANCELLED, on_owner.seq)


async def test_same_request_id_on_two_instances_makes_one_upstream_call(
    redis_server: RedisServer,
) -> None:
    async with pair(redis_server) as (a, b):
        first = ListSink()
        script_a, script_b = Script(), Script()
        response, new = await a.create_response(
            a.open_session("alice", first), "same", produce=script_a
        )
        assert new
        script_a.feed("x")
        await script_a.wait_emitted(1)
        # Known to b only through Redis: what a refused duplicate on b would name.
        elsewhere = b.open_session("alice", ListSink())
        assert await b.locate(elsewhere, "same") == (response.id, response.epoch)
        assert await b.locate(b.open_session("bob", ListSink()), "same") is None
        second = ListSink()
        mirror, new_b = await b.create_response(
            b.open_session("alice", second), "same", produce=script_b
        )
        assert (mirror.id, new_b, mirror.mirror) == (response.id, False, True)
        script_a.feed("y", FinishInfo())
        await second.wait_done(response.id)
        assert second.seqs(response.id) == [0, 1, 2, 3]
        assert second.texts(response.id) == ["x", "y"]
        assert (script_a.calls, script_b.calls) == (1, 0)


async def test_another_principal_finds_nothing_elsewhere(redis_server: RedisServer) -> None:
    async with pair(redis_server) as (a, b):
        on_a = a.open_session("alice", ListSink())
        response, _ = await a.create_response(on_a, "r", produce=Script())
        sink = ListSink()
        result = await b.resume(b.open_session("mallory", sink), response.id, response.epoch, 0)
        assert not result.recovered
        assert [e for e in sink.events if isinstance(e, Delta | Done)] == []


async def test_a_dead_owner_ends_followers_failed_owner_lost(redis_server: RedisServer) -> None:
    async with pair(redis_server) as (a, b):
        on_a = a.open_session("alice", ListSink())
        script = Script()
        response, _ = await a.create_response(on_a, "r", produce=script)
        script.feed("a", "b")
        await script.wait_emitted(2)
        a.close_session(on_a)
        follower = ListSink()
        await b.resume(b.open_session("alice", follower), response.id, response.epoch, -1)
        await follower.wait_for(lambda _: follower.texts(response.id) == ["a", "b"])

        # A "dies" as far as Redis can tell: its lease is neither renewed nor there.
        backend = a.backend
        assert isinstance(backend, RedisBackend)

        async def frozen() -> None:
            return None

        backend._heartbeat_once = frozen  # type: ignore[method-assign]
        await backend._client().delete(f"{backend._keys.prefix}instance:{backend.instance_id}")
        with anyio.fail_after(10):  # the lease bound is 1 s here
            done = await _done(follower, response.id)
        assert (done.status, done.reason, done.seq) == (Status.FAILED, "owner_lost", 3)
        assert follower.seqs(response.id) == [0, 1, 2, 3]


async def _done(sink: ListSink, response_id: str) -> Done:
    while not sink.dones(response_id):
        await sink.changed()
    return sink.dones(response_id)[0]


@dataclass
class _Alone:
    """One instance, one running answer (fed by ``script``), and a Redis client."""

    backend: RedisBackend
    redis: aioredis.Redis
    response: Response
    script: Script
    sink: ListSink
    key: str  # the answer's events stream

    async def flushed(self) -> None:
        with anyio.fail_after(2):
            await self.backend._flushed()


@asynccontextmanager
async def alone(redis_server: RedisServer) -> AsyncIterator[_Alone]:
    # lease_s=60: no heartbeat renews a key's lifetime within a test.
    prefix = f"alone{next(_prefixes)}:"
    backend = RedisBackend(redis_server.url, window_s=5, prefix=prefix, lease_s=60.0)
    redis = aioredis.from_url(redis_server.url)
    try:
        async with SessionManager(resume_window_s=5, backend=backend).running() as manager:
            sink, script = ListSink(), Script()
            session = manager.open_session("alice", sink)
            response, _ = await manager.create_response(session, "r", produce=script)
            key = Keys(prefix).events(response.id)
            yield _Alone(backend, redis, response, script, sink, key)
            script.feed(FinishInfo())
            await sink.wait_done(response.id)
    finally:
        await redis.aclose()


async def test_a_running_answers_events_keep_a_lifetime_and_a_finished_ones_the_window(
    redis_server: RedisServer,
) -> None:
    # The writer gives the events key its lifetime once, with the first batch; a
    # heartbeat renews it after that, so the later batches must leave it in place,
    # and the Done shortens it to the window.
    async with alone(redis_server) as one:
        one.script.feed("a")
        await one.script.wait_emitted(1)
        await one.flushed()
        assert await one.redis.pttl(one.key) > 60_000  # the running lifetime (10 minutes)
        one.script.feed("b", "c")
        await one.script.wait_emitted(3)
        await one.flushed()
        assert await one.redis.xlen(one.key) == 4  # created and three deltas
        assert await one.redis.pttl(one.key) > 60_000
        one.script.feed(FinishInfo())
        await one.sink.wait_done(one.response.id)
        await one.flushed()
        assert 0 < await one.redis.pttl(one.key) <= 5_000


async def test_a_burst_larger_than_one_pipeline_is_logged_whole_and_in_order(
    redis_server: RedisServer,
) -> None:
    # More events than one pipeline takes (the writer splits them): none lost, none
    # out of order, and another instance replays them all.
    async with pair(redis_server) as (a, b):
        sink = ListSink()
        script = Script()
        response, _ = await a.create_response(a.open_session("alice", sink), "r", produce=script)
        script.feed(*(f"t{i} " for i in range(700)), FinishInfo())
        await sink.wait_done(response.id)
        replay = ListSink()
        result = await b.resume(b.open_session("alice", replay), response.id, response.epoch, -1)
        assert result.recovered
        await replay.wait_done(response.id)
        assert replay.texts(response.id) == [f"t{i} " for i in range(700)]
        assert replay.seqs(response.id) == list(range(702))


async def test_texts_with_newlines_and_any_characters_cross_the_packed_batch_intact(
    redis_server: RedisServer,
) -> None:
    # The writer sends a batch as one newline-separated string: an event's text may
    # hold newlines (escaped in its JSON), separators of other formats, quotes and
    # any Unicode, and must come back on another instance exactly as sent.
    texts = ["line 1\nline 2\n", "\n", "\r\n\t\\n", '"quoted" {json}', "é😀\u2028\x00", " "]
    async with pair(redis_server) as (a, b):
        sink, script = ListSink(), Script()
        response, _ = await a.create_response(a.open_session("alice", sink), "r", produce=script)
        script.feed(*texts, FinishInfo())
        await sink.wait_done(response.id)
        replay = ListSink()
        result = await b.resume(b.open_session("alice", replay), response.id, response.epoch, -1)
        assert result.recovered
        await replay.wait_done(response.id)
        assert replay.texts(response.id) == texts


def test_a_key_prefix_with_a_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        Keys("gw:\n")


async def test_a_resent_batch_is_skipped_quietly_and_a_real_write_error_is_logged(
    redis_server: RedisServer,
) -> None:
    # After a cut the writer resends its whole batch: entries already written fail
    # "equal or smaller" inside the append script and are skipped without a word;
    # any other failure is a bug and logged.
    async with alone(redis_server) as one:
        one.script.feed("a", "b")
        await one.script.wait_emitted(2)
        await one.flushed()
        logged = await one.redis.xrange(one.key)
        batch = [(one.response, codec.decode(one.response.id, f[b"e"])) for _, f in logged]
        with capture_logs() as logs:
            await one.backend._write(batch)
        assert await one.redis.xrange(one.key) == logged
        assert not [e for e in logs if e["event"] == "sessions.redis_write_failed"]
        await one.redis.delete(one.key)
        await one.redis.set(one.key, "not a stream")
        with capture_logs() as logs:
            await one.backend._write(batch)
        failed = [e for e in logs if e["event"] == "sessions.redis_write_failed"]
        assert len(failed) == len(batch) and "WRONGTYPE" in failed[0]["error"]
        await one.redis.delete(one.key)


async def test_a_conversation_running_on_one_instance_is_busy_and_found_on_the_other(
    redis_server: RedisServer,
) -> None:
    async with pair(redis_server) as (a, b):
        owner_sink = ListSink()
        on_a = a.open_session("alice", owner_sink)
        script = Script()
        response, _ = await a.create_response(on_a, "r", produce=script, conversation_id="chat")
        on_b = b.open_session("alice", ListSink())
        with pytest.raises(ConversationBusy):
            await b.create_response(on_b, "r2", produce=Script(), conversation_id="chat")
        # Another principal's conversation of that id is another conversation.
        assert await b.running_in_any(b.open_session("bob", ListSink()), "chat") is None

        found = await b.running_in_any(on_b, "chat")
        assert found is not None and (found.id, found.mirror) == (response.id, True)
        await b.cancel(on_b, response_id=found.id)
        await wait(script.exited)  # the owner closed its upstream
        done = await owner_sink.wait_done(response.id)
        assert done.status is Status.CANCELLED
        await b.wait_for(lambda: not found.running)
        # Ended: the conversation is free on both instances.
        assert await b.running_in_any(on_b, "chat") is None
        _, new = await b.create_response(on_b, "r3", produce=Script(), conversation_id="chat")
        assert new


async def test_a_dead_owner_does_not_keep_its_conversation_busy(
    redis_server: RedisServer,
) -> None:
    async with pair(redis_server) as (a, b):
        on_a = a.open_session("alice", ListSink())
        await a.create_response(on_a, "r", produce=Script(), conversation_id="chat")
        backend = a.backend
        assert isinstance(backend, RedisBackend)

        async def frozen() -> None:
            return None

        backend._heartbeat_once = frozen  # type: ignore[method-assign]
        await backend._client().delete(f"{backend._keys.prefix}instance:{backend.instance_id}")
        _, new = await b.create_response(
            b.open_session("alice", ListSink()), "r2", produce=Script(), conversation_id="chat"
        )
        assert new


async def test_an_owner_dead_before_logging_what_it_delivered_still_ends_every_reader(
    redis_server: RedisServer,
) -> None:
    async with instances(redis_server, 3) as (a, b, c):
        own = ListSink()
        on_a = a.open_session("alice", own)
        script = Script()
        response, _ = await a.create_response(on_a, "r", produce=script)
        backend = a.backend
        assert isinstance(backend, RedisBackend)
        script.feed("a", "b")
        await script.wait_emitted(2)
        with anyio.fail_after(2):
            await backend._flushed()  # 0..2 are logged
        released = anyio.Event()

        async def stalled(batch: object) -> None:
            await released.wait()

        backend._write = stalled  # type: ignore[method-assign]
        script.feed("c", "d")  # delivered on A (seqs 3, 4), never logged
        await own.wait_for(lambda _: own.texts(response.id) == ["a", "b", "c", "d"])

        async def frozen() -> None:
            return None

        backend._heartbeat_once = frozen  # type: ignore[method-assign]
        await backend._client().delete(f"{backend._keys.prefix}instance:{backend.instance_id}")
        # A's client resumes on B with all it saw: owner_lost comes after seq 4.
        seen = ListSink()
        result = await b.resume(b.open_session("alice", seen), response.id, response.epoch, 4)
        assert result.recovered
        with anyio.fail_after(10):
            done = await _done(seen, response.id)
        assert (done.status, done.reason, done.seq) == (Status.FAILED, "owner_lost", 5)
        # A reader from the start on C gets what was logged, then its end, right after.
        late = ListSink()
        result = await c.resume(c.open_session("alice", late), response.id, response.epoch, -1)
        assert result.recovered
        with anyio.fail_after(10):
            done = await _done(late, response.id)
        assert (done.reason, late.texts(response.id), late.seqs(response.id)) == (
            "owner_lost",
            ["a", "b"],
            [0, 1, 2, 3],
        )
        released.set()
