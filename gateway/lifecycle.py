"""Process lifecycle as the load balancer sees it: starting -> ready -> draining."""

from __future__ import annotations

import anyio


class Lifecycle:
    """Readiness and drain state. ``/health/ready`` reports :attr:`ready`."""

    def __init__(self) -> None:
        self.started = False
        self.draining = False
        self.drain_started = anyio.Event()

    @property
    def ready(self) -> bool:
        return self.started and not self.draining
