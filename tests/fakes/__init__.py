"""Fake upstream providers speaking the real wire formats over real HTTP on loopback.

Shared by the tests and by ``bench/``. Each fake is a small Starlette app driven
by a :class:`~tests.fakes.base.FakeUpstream` controller: queue scenarios
(tokens, pace, failures) and read back what the gateway sent and whether it hung
up early.
"""

from tests.fakes.base import FakeUpstream, RequestRecord, Scenario
from tests.fakes.server import serve

__all__ = ["FakeUpstream", "RequestRecord", "Scenario", "serve"]
