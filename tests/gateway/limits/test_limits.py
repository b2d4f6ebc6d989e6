"""The per-socket token bucket and the registry of open sockets, on their own."""

from __future__ import annotations

import pytest

from gateway.limits import SocketRegistry, TokenBucket


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    assert bucket.take() == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take() == 0
    now[0] = 100
    assert [bucket.take() for _ in range(3)][:2] == [0, 0]


def test_socket_registry_counts_total_and_per_key() -> None:
    registry: SocketRegistry[object] = SocketRegistry(max_sockets=3, max_per_key=2)
    a, b, c, d = object(), object(), object(), object()
    assert registry.add(a, "k1") and registry.add(b, "k1")
    assert not registry.add(c, "k1")
    assert registry.add(c, None)
    assert not registry.add(d, "k2")  # instance full
    registry.remove(a)
    assert registry.count("k1") == 1
    assert registry.add(d, "k1")
    for conn in (b, c, d):
        registry.remove(conn)
    assert len(registry) == 0
