"""A failed exchange raises a fresh copy of its stored error (no reference cycle)."""

from __future__ import annotations

from gateway.upstream.errors import ReadError, ReadTimeout
from gateway.upstream.exchange import _fresh


def test_the_copy_keeps_type_message_and_cause() -> None:
    cause = ConnectionResetError("reset by peer")
    stored = ReadTimeout("upstream:443 sent nothing for 60 s")
    stored.__cause__ = cause
    raised = _fresh(stored)
    assert raised is not stored
    assert type(raised) is ReadTimeout
    assert raised.args == stored.args
    assert raised.timed_out
    assert raised.__cause__ is cause


def test_a_copy_without_cause_keeps_the_implicit_context_visible() -> None:
    raised = _fresh(ReadError("upstream:443 closed the connection"))
    assert raised.__cause__ is None
    assert not raised.__suppress_context__
