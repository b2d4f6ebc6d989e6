"""Process lifecycle as the load balancer sees it: starting -> ready -> draining -> drained.

Draining is started by SIGTERM (see :mod:`gateway.server`) or by the admin
endpoint. It must run *before* uvicorn is told to stop, because uvicorn's own
shutdown closes every WebSocket with 1012 at once. Components that hold
long-lived work (the WebSocket sessions) register a drain hook; the hook gets
the absolute deadline (``anyio.current_time()`` clock) by which it must be done.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup

DrainHook = Callable[[float], Coroutine[Any, Any, None]]


class Lifecycle:
    """Readiness and drain state. ``/health/ready`` reports :attr:`ready`."""

    def __init__(self, drain_timeout_s: float) -> None:
        self.drain_timeout_s = drain_timeout_s
        self.started = False
        self.draining = False
        self.drain_deadline: float | None = None
        self.drained = anyio.Event()
        self._hooks: list[DrainHook] = []
        self._task_group: TaskGroup | None = None

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    def attach(self, task_group: TaskGroup) -> None:
        """Called by the lifespan: the drain runs in the app's own task group."""
        self._task_group = task_group

    def add_drain_hook(self, hook: DrainHook) -> None:
        self._hooks.append(hook)

    def start_drain(self) -> None:
        """Begin draining in the background (idempotent); :attr:`drained` is set when done."""
        if self.draining:
            return
        self.draining = True  # readiness turns 503 at once
        self.drain_deadline = anyio.current_time() + self.drain_timeout_s
        if self._task_group is None:
            self.drained.set()
            return
        self._task_group.start_soon(self._run_hooks, self.drain_deadline)

    async def drain(self) -> None:
        """Drain and wait until it is done."""
        self.start_drain()
        await self.drained.wait()

    async def _run_hooks(self, deadline: float) -> None:
        try:
            async with anyio.create_task_group() as tg:
                for hook in self._hooks:
                    tg.start_soon(hook, deadline)
        finally:
            self.drained.set()
