"""Test doubles for the sessions package: a recording sink and a scripted producer."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from sessions import Created, Delta, Done, FinishInfo, Moved, Response, ResumeResult, SinkEvent


class ListSink:
    """Records every pushed event; tests await conditions on what arrived."""

    def __init__(self) -> None:
        self.events: list[SinkEvent] = []
        self._changed = anyio.Event()

    def push(self, event: SinkEvent) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def changed(self) -> None:
        """Return after the next push (callers bound the wait themselves)."""
        await self._changed.wait()

    async def wait_for(self, predicate: Callable[[list[SinkEvent]], bool]) -> None:
        with anyio.fail_after(2):
            while not predicate(self.events):
                await self._changed.wait()

    async def wait_done(self, response_id: str) -> Done:
        await self.wait_for(lambda _: bool(self.dones(response_id)))
        return self.dones(response_id)[0]

    def of(self, response_id: str) -> list[Created | Delta | Done]:
        return [
            e
            for e in self.events
            if not isinstance(e, ResumeResult | Moved) and e.response_id == response_id
        ]

    def moves(self) -> list[Moved]:
        return [e for e in self.events if isinstance(e, Moved)]

    def seqs(self, response_id: str) -> list[int]:
        return [e.seq for e in self.of(response_id)]

    def texts(self, response_id: str) -> list[str]:
        return [e.text for e in self.of(response_id) if isinstance(e, Delta)]

    def dones(self, response_id: str) -> list[Done]:
        return [e for e in self.of(response_id) if isinstance(e, Done)]


Step = str | FinishInfo | Exception


class Script:
    """A producer driven by the test: each fed step is a delta, a finish or an error.

    ``started``/``exited`` tell when ``produce`` began and when its ``finally`` ran.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.started = anyio.Event()
        self.exited = anyio.Event()
        self.emitted = 0
        self._send, self._receive = anyio.create_memory_object_stream[Step](1000)
        self._progress = anyio.Event()

    def feed(self, *steps: Step) -> None:
        for step in steps:
            self._send.send_nowait(step)

    async def wait_emitted(self, count: int) -> None:
        with anyio.fail_after(2):
            while self.emitted < count:
                await self._progress.wait()

    async def __call__(self, response: Response) -> FinishInfo:
        self.calls += 1
        self.started.set()
        try:
            async for step in self._receive:
                if isinstance(step, FinishInfo):
                    return step
                if isinstance(step, Exception):
                    raise step
                response.emit_delta(step)
                self.emitted += 1
                self._progress.set()
                self._progress = anyio.Event()
            raise AssertionError("script ran out of steps")
        finally:
            self.exited.set()


async def wait(event: anyio.Event) -> None:
    with anyio.fail_after(2):
        await event.wait()
