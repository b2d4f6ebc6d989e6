"""The Redis implementation of :class:`sessions.Backend`: sessions shared by instances.

The local half is a :class:`~sessions.MemoryBackend` (the responses this process
runs or mirrors). The shared half, in Redis (keys in :mod:`gateway.scaleout.keys`):

- a claim per ``(principal, request_id)`` (SET NX, with the response's record, in
  one script), so one upstream call per request id across instances;
- each owned response's events in a bounded stream whose entry ids are ``1-<seq>``,
  so "everything after ``last_seq``" is one XRANGE and following live is XREAD
  from the last id read: no gap, no duplicate;
- one lease per instance (refreshed every third of its lifetime); a follower that
  finds the owner's lease gone logs ``failed``/``owner_lost`` itself;
- a pub/sub channel per instance for cancel/attach/detach of the responses it owns.

Per token nothing waits on Redis: events are queued synchronously and one writer
task sends whatever queued meanwhile in one pipeline (the events in one script
call), so a batch is at least ``_LINGER_S`` or one round trip long. While Redis is
unreachable the queue keeps growing and is sent, in order, when it is back; running
responses go on meanwhile, new ones are refused with
:class:`~sessions.errors.BackendUnavailable`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.scaleout import codec
from gateway.scaleout.keys import Keys
from sessions import (
    BackendUnavailable,
    Control,
    ControlOp,
    ConversationBusy,
    MemoryBackend,
    Reason,
    RemoteRecord,
    Response,
    ResponseMeta,
    Status,
)
from sessions.events import Done, ResponseEvent
from sessions.response import Publish

_log = structlog.get_logger("gateway.sessions")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_RETRY_S = 0.2  # pause between attempts while Redis is unreachable
# Events per pipeline. Packing commands and parsing replies is synchronous work in
# the event loop; a batch that grew while Redis was slow would stall every stream
# for its whole length at once.
_MAX_BATCH = 256
# How long the writer lets events gather before it sends them: a pipeline costs the
# gateway ~100 µs however few events it carries (the client's connection, timeout and
# send plumbing, a wake-up for the reply). Bench scenario 6 (c=100, 20 ms/token):
# ~9 -> ~30 events per pipeline, gateway CPU per token ~1.7x -> ~1.3x the in-memory
# backend's (with _APPEND). Followers on other instances see events that much later.
_LINGER_S = 0.005

# Claim a request id for a response and write its record, atomically; else return
# the record that holds the claim (a claim whose record expired is taken over, and
# ARGV[6] == '1' takes it over regardless). With a conversation (KEYS[3]), another
# running response of it whose owner lives answers 'busy' instead, and a taken
# claim points the conversation at this response.
_CLAIM = """
local function busy()
  if #KEYS < 3 then return false end
  local other = redis.call('GET', KEYS[3])
  if not other or other == ARGV[1] then return false end
  local held = redis.call('HMGET', ARGV[3] .. other, 'ended', 'owner')
  -- Ended, or ours: this instance's own index knows better (its Done may be queued).
  if held[1] ~= '0' or held[2] == ARGV[5] then return false end
  return redis.call('EXISTS', ARGV[7] .. held[2]) == 1
end
local function take()
  if busy() then return 'busy' end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('HSET', KEYS[2], 'data', ARGV[4], 'owner', ARGV[5], 'ended', '0')
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  if #KEYS >= 3 then
    redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
  end
  return false
end
if ARGV[6] == '1' then
  return take()
end
local id = redis.call('GET', KEYS[1])
if not id then
  return take()
end
local record = redis.call('HGETALL', ARGV[3] .. id)
if #record == 0 then
  return take()
end
table.insert(record, 'id')
table.insert(record, id)
return record
"""


# Append a batch of events to their streams, one XADD each. ARGV[1] is the streams'
# MAXLEN, ARGV[2] the whole batch as one string: per event its stream key, entry id
# and encoding, each ended by a newline (none holds one: the encoding is compact JSON,
# where a newline is always escaped, and the key prefix is checked by Keys). A resend
# of an entry written before a cut fails "equal or smaller" and is skipped; any other
# error is returned. One command and one reply per batch, where an XADD each cost the
# gateway a command to pack and a reply to parse per token; and one argument, where
# three per event spent most of the writer's time in redis-py packing each one (bench
# scenario 6: pack_command was ~80% of the writer's samples under py-spy).
# The stream keys are not declared in KEYS: this is standalone Redis, not Cluster (a
# batch spans many responses' streams, which Cluster would put in different slots).
_APPEND = """
local failed = {}
local batch, maxlen = ARGV[2], ARGV[1]
local at = 1
while at <= #batch do
  local key_end = string.find(batch, '\\n', at, true)
  local id_end = string.find(batch, '\\n', key_end + 1, true)
  local data_end = string.find(batch, '\\n', id_end + 1, true)
  local reply = redis.pcall('XADD', string.sub(batch, at, key_end - 1), 'MAXLEN', maxlen,
    string.sub(batch, key_end + 1, id_end - 1), 'e', string.sub(batch, id_end + 1, data_end - 1))
  if type(reply) == 'table' and reply.err
      and not string.find(reply.err, 'equal or smaller', 1, true) then
    failed[#failed + 1] = reply.err
  end
  at = data_end + 1
end
return failed
"""


class RedisBackend:
    """Sessions in Redis at ``url``. ``window_s``: the resume window (ended keys'
    lifetime); ``lease_s``: how long a dead owner's responses wait for ``owner_lost``."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        window_s: float,
        prefix: str = "gw:",
        lease_s: float = 3.0,
        stream_max_events: int = 10_000,
        running_ttl_s: float = 600.0,
    ) -> None:
        self._url = url
        self._keys = Keys(prefix)
        self._id = "inst_" + secrets.token_urlsafe(8)
        self._lease_ms = max(1, int(lease_s * 1000))
        self._poll_ms = max(50, self._lease_ms // 3)
        # Finished responses stay resumable for the window, as they do in memory.
        self._ended_ttl_ms = max(1, int(window_s * 1000))
        self._running_ttl_ms = max(int(running_ttl_s * 1000), self._ended_ttl_ms)
        self._maxlen = stream_max_events
        self._local = MemoryBackend()
        self._redis: aioredis.Redis | None = None
        self._claim: Any = None
        self._available = False
        self._pending: list[tuple[Response, ResponseEvent]] = []
        # Running responses whose events key has been given its lifetime; the
        # heartbeat renews it from then on.
        self._expiring: set[str] = set()
        self._wake = anyio.Event()
        self._written = anyio.Event()
        self._writing = False
        # The lease is renewed every third of its lifetime; the running responses'
        # keys live running_ttl_s (ten minutes by default), so renewing them every
        # tenth of that leaves nine chances, where renewing them with the lease cost
        # four commands per running response per second (bench scenario 6, c=100,
        # py-spy: the heartbeat cost the gateway a fifth of what the event writer
        # did). A new response's keys get their lifetime when written.
        self._renew_every_s = self._running_ttl_ms / 10_000
        self._renew_at = 0.0

    # --- lifetime ---------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._id

    @property
    def available(self) -> bool:
        """Redis answered the last time it was asked (readiness reports this)."""
        return self._available

    @asynccontextmanager
    async def running(self, on_control: Callable[[Control], None]) -> AsyncIterator[None]:
        timeout_s = max(2.0, self._poll_ms / 1000 + 1.0)
        client = aioredis.from_url(
            self._url,
            socket_timeout=timeout_s,
            socket_connect_timeout=1.0,
            # Failures are retried by this backend's own loops, not inside a command.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=10,
        )
        self._redis = client
        self._claim = client.register_script(_CLAIM)
        try:
            await self._heartbeat_once()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write_loop)
                tg.start_soon(self._heartbeat_loop)
                tg.start_soon(self._control_loop, on_control)
                try:
                    yield
                finally:
                    # The manager has ended its responses: their Done are queued.
                    with anyio.move_on_after(2.0, shield=True):
                        await self._flushed()
                        await client.delete(self._keys.lease(self._id))
                    tg.cancel_scope.cancel()
        finally:
            self._redis = None
            with anyio.move_on_after(1.0, shield=True):
                await client.aclose()

    # --- local half (delegated) ---------------------------------------------------------

    def add(self, response: Response) -> None:
        self._local.add(response)

    def get(self, response_id: str) -> Response | None:
        return self._local.get(response_id)

    def by_request(self, principal: str, request_id: str) -> Response | None:
        return self._local.by_request(principal, request_id)

    def busy(self, principal: str, conversation_id: str) -> bool:
        return self._local.busy(principal, conversation_id)

    def ended(self, response: Response) -> None:
        self._local.ended(response)

    def discard(self, response: Response) -> None:
        self._expiring.discard(response.id)
        self._local.discard(response)

    def local(self) -> list[Response]:
        return self._local.local()

    def publisher(self, response: Response) -> Publish | None:
        def publish(event: ResponseEvent) -> None:
            # The per-token path: a list append, and a wake-up once per batch.
            self._pending.append((response, event))
            if not self._wake.is_set():
                self._wake.set()

        return publish

    # --- shared half ----------------------------------------------------------------------

    def check_available(self) -> None:
        if not self._available:
            raise BackendUnavailable("the session store (Redis) is unreachable; retry shortly")

    async def claim(self, response: Response) -> RemoteRecord | None:
        keys = self._keys
        data = orjson.dumps(
            {
                "request_id": response.request_id,
                "principal": response.principal,
                "epoch": response.epoch,
                "meta": {
                    "model": response.meta.model,
                    "provider": response.meta.provider,
                    "agent": response.meta.agent,
                },
                "conversation_id": response.conversation_id,
            }
        )
        claimed = [keys.request(response.principal, response.request_id), keys.record(response.id)]
        if response.conversation_id is not None:
            claimed.append(keys.conversation(response.principal, response.conversation_id))
        take_over = "0"
        while True:
            try:
                found = await self._claim(
                    keys=claimed,
                    args=[
                        response.id,
                        self._running_ttl_ms,
                        keys.record(""),
                        data,
                        self._id,
                        take_over,
                        keys.lease(""),
                    ],
                )
            except _UNREACHABLE as exc:
                raise self._unavailable(exc) from None
            if not found:
                return None
            if found == b"busy":
                raise ConversationBusy(
                    f"conversation {response.conversation_id!r} has a running response"
                )
            fields = dict(zip(found[::2], found[1::2], strict=True))
            record = _record(fields.pop(b"id").decode(), fields)
            if not self._forgotten_here(record):
                return record
            take_over = "1"  # ours, and this process has let it go: as in memory

    def _forgotten_here(self, record: RemoteRecord) -> bool:
        """This instance owns ``record`` yet no longer knows it: its window passed here
        (the keys' TTL may lag by a write), so for everyone it is gone."""
        return record.owner == self._id and self._local.get(record.response_id) is None

    async def lookup(
        self, principal: str, *, response_id: str | None = None, request_id: str | None = None
    ) -> RemoteRecord | None:
        if response_id is None and request_id is not None:
            response_id = await self._pointed_at(self._keys.request(principal, request_id))
        if response_id is None:
            return None
        record = await self._fetch(response_id)
        return None if record is None or self._forgotten_here(record) else record

    async def lookup_conversation(
        self, principal: str, conversation_id: str
    ) -> RemoteRecord | None:
        response_id = await self._pointed_at(self._keys.conversation(principal, conversation_id))
        if response_id is None:
            return None
        record = await self._fetch(response_id)
        if record is None or record.ended or record.principal != principal:
            return None
        return None if self._forgotten_here(record) else record

    async def _pointed_at(self, key: str) -> str | None:
        """The response id a pointer key (request id, conversation) holds, if any."""
        try:
            found = await self._client().get(key)
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        return None if found is None else found.decode()

    async def _fetch(self, response_id: str) -> RemoteRecord | None:
        """The response's shared record, ``None`` once its hash has lapsed."""
        try:
            fields = await self._client().hgetall(self._keys.record(response_id))
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        return _record(response_id, fields) if fields else None

    async def events_after(self, record: RemoteRecord, last_seq: int) -> list[ResponseEvent] | None:
        key = self._keys.events(record.response_id)
        start = "-" if last_seq < 0 else "(" + _entry(last_seq)
        try:
            async with self._client().pipeline(transaction=True) as pipe:
                pipe.xrange(key, min=start, max="+")
                pipe.xrevrange(key, max="+", min="-", count=1)
                entries, tail = await pipe.execute()
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        if not tail:
            # Claimed but nothing logged yet (the owner's writer sends its first batch
            # a round trip after the claim): what comes next follows. Ended: gone.
            return None if record.ended else []
        if last_seq > _seq(tail[0][0]):
            # The client saw more than is logged yet: the owner delivers to its own
            # socket first and logs a batch later. A running response's next events
            # come; a finished one's never will.
            return None if record.ended else []
        events = [codec.decode(record.response_id, fields[b"e"]) for _, fields in entries]
        if events and events[0].seq != max(last_seq, -1) + 1:
            return None  # trimmed: the first ones asked for are gone
        return events

    async def last_seq(self, record: RemoteRecord) -> int:
        try:
            tail = await self._client().xrevrange(
                self._keys.events(record.response_id), max="+", min="-", count=1
            )
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        return _seq(tail[0][0]) if tail else -1

    async def follow(
        self, record: RemoteRecord, last_seq: int
    ) -> AsyncGenerator[ResponseEvent, None]:
        key = self._keys.events(record.response_id)
        lease = self._keys.lease(record.owner)
        last = last_seq
        while True:
            try:
                client = self._client()
                found = await client.xread(
                    {key: "0-0" if last < 0 else _entry(last)}, count=1000, block=self._poll_ms
                )
                if not found:
                    if await client.exists(lease):
                        continue
                    if await self._log_owner_lost(record, last + 1):
                        yield Done(
                            record.response_id,
                            record.request_id,
                            last + 1,
                            Status.FAILED,
                            Reason.OWNER_LOST,
                        )
                        return
                    continue  # the owner logged something after all: read it
            except _UNREACHABLE:
                await anyio.sleep(_RETRY_S)
                continue
            for _, fields in found[0][1]:
                event = codec.decode(record.response_id, fields[b"e"])
                last = event.seq
                yield event
                if type(event) is Done:
                    return

    async def send(self, owner: str, control: Control) -> None:
        message = orjson.dumps(
            {"op": control.op.value, "id": control.response_id, "reason": control.reason}
        )
        try:
            await self._client().publish(self._keys.control(owner), message)
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    # --- tasks ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            await anyio.sleep(_LINGER_S)
            self._wake = anyio.Event()
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            if self._pending:
                self._wake.set()  # the rest goes in the next pipeline
            self._writing = True
            while True:
                try:
                    await self._write(batch)
                    self._set_available(True)
                    break
                except _UNREACHABLE as exc:
                    self._unavailable(exc)
                    await anyio.sleep(_RETRY_S)
            self._writing = False
            written, self._written = self._written, anyio.Event()
            written.set()

    async def _write(self, batch: list[tuple[Response, ResponseEvent]]) -> None:
        keys = self._keys
        last: dict[str, tuple[Response, ResponseEvent]] = {}
        fresh: list[str] = []
        ended_ids: list[str] = []
        packed: list[bytes] = []
        for response, event in batch:
            stream, entry = keys.events(response.id), _entry(event.seq)
            packed.append(b"%s\n%s\n%s\n" % (stream.encode(), entry.encode(), codec.encode(event)))
            last[response.id] = (response, event)
        async with self._client().pipeline(transaction=False) as pipe:
            # EVAL, not EVALSHA: Redis caches the compiled script by its hash, and a
            # restarted Redis (an outage) has no script loaded to miss.
            pipe.eval(_APPEND, 0, self._maxlen, b"".join(packed))
            for response, event in last.values():
                if type(event) is Done:
                    ttl = self._ended_ttl_ms
                    pipe.pexpire(keys.events(response.id), ttl)
                    pipe.hset(keys.record(response.id), "ended", "1")
                    pipe.pexpire(keys.record(response.id), ttl)
                    pipe.pexpire(keys.request(response.principal, response.request_id), ttl)
                    ended_ids.append(response.id)
                elif response.id not in self._expiring:
                    # Its first write created the key. Once it has a lifetime the
                    # heartbeat renews it: one PEXPIRE per response, not per batch.
                    # Bench scenario 6 (c=100, paced): 2.0 -> 1.14 Redis commands per
                    # token, gateway CPU per token ~1.9x -> ~1.7x the in-memory one's.
                    pipe.pexpire(keys.events(response.id), self._running_ttl_ms)
                    fresh.append(response.id)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, _UNREACHABLE):
                raise result
        # _APPEND's reply lists the failed XADDs that were not resends; any other
        # command's error is one too. Either is a bug.
        appended, others = results[0], results[1:]
        failures = appended if isinstance(appended, list) else [appended]
        failures += [r for r in others if isinstance(r, ResponseError)]
        for error in failures:
            _log.error("sessions.redis_write_failed", error=str(error))
        # Only once the batch went through: a resend after a cut sets the TTL again.
        self._expiring.update(fresh)
        self._expiring.difference_update(ended_ids)

    async def _flushed(self) -> None:
        while self._pending or self._writing:
            await self._written.wait()

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self._lease_ms / 3000 if self._available else _RETRY_S)
            await self._heartbeat_once()

    async def _heartbeat_once(self) -> None:
        """Renew this instance's lease and the TTLs of the responses it runs."""
        keys = self._keys
        now = anyio.current_time()
        renew = now >= self._renew_at
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                pipe.set(keys.lease(self._id), b"1", px=self._lease_ms)
                for response in self._local.local() if renew else ():
                    if response.running and not response.mirror:
                        ttl = self._running_ttl_ms
                        pipe.pexpire(keys.record(response.id), ttl)
                        pipe.pexpire(keys.events(response.id), ttl)
                        pipe.pexpire(keys.request(response.principal, response.request_id), ttl)
                        if response.conversation_id is not None:
                            conversation = keys.conversation(
                                response.principal, response.conversation_id
                            )
                            pipe.pexpire(conversation, ttl)
                await pipe.execute()
        except _UNREACHABLE as exc:
            self._unavailable(exc)
            return
        if renew:
            self._renew_at = now + self._renew_every_s
        self._set_available(True)
        if self._pending and not self._wake.is_set():
            self._wake.set()

    async def _control_loop(self, on_control: Callable[[Control], None]) -> None:
        channel = self._keys.control(self._id)
        while True:
            try:
                async with self._client().pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None and message["type"] in (b"message", "message"):
                            on_control(_control(message["data"]))
            except _UNREACHABLE:
                await anyio.sleep(_RETRY_S)

    # --- helpers ---------------------------------------------------------------------------

    async def _log_owner_lost(self, record: RemoteRecord, seq: int) -> bool:
        """Log the ``owner_lost`` Done at ``seq``; False if that seq is taken already."""
        keys = self._keys
        done = Done(record.response_id, record.request_id, seq, Status.FAILED, Reason.OWNER_LOST)
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.xadd(keys.events(record.response_id), {"e": codec.encode(done)}, id=_entry(seq))
            pipe.hset(keys.record(record.response_id), "ended", "1")
            pipe.pexpire(keys.events(record.response_id), self._ended_ttl_ms)
            pipe.pexpire(keys.record(record.response_id), self._ended_ttl_ms)
            results = await pipe.execute(raise_on_error=False)
        if isinstance(results[0], _UNREACHABLE):
            raise results[0]
        if not isinstance(results[0], ResponseError):
            _log.warning("sessions.owner_lost", response_id=record.response_id, owner=record.owner)
        return not isinstance(results[0], ResponseError)

    def _client(self) -> Any:
        # redis-py's reply types are unions of every RESP shape: replies are read as
        # what each command returns (bytes, as decode_responses is off).
        client = self._redis
        if client is None:
            raise BackendUnavailable("the session store is not running")
        return client

    def _set_available(self, available: bool) -> None:
        if available != self._available:
            self._available = available
            if available:
                _log.info("sessions.redis_available")
            else:
                _log.warning("sessions.redis_unavailable")

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        self._set_available(False)
        return BackendUnavailable("the session store (Redis) is unreachable; retry shortly")


def _entry(seq: int) -> str:
    # Stream ids must exceed 0-0, and seqs start at 0: seq n is entry 1-n.
    return f"1-{seq}"


def _seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[1])


def _record(response_id: str, fields: dict[bytes, bytes]) -> RemoteRecord:
    data = orjson.loads(fields[b"data"])
    return RemoteRecord(
        response_id=response_id,
        request_id=data["request_id"],
        principal=data["principal"],
        epoch=data["epoch"],
        meta=ResponseMeta(**data["meta"]),
        conversation_id=data["conversation_id"],
        owner=fields[b"owner"].decode(),
        ended=fields.get(b"ended") == b"1",
    )


def _control(data: bytes) -> Control:
    body = orjson.loads(data)
    return Control(ControlOp(body["op"]), body["id"], body.get("reason"))
