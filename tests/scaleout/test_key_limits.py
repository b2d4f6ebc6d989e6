"""The per-key counters behind one interface: the in-process and the Redis implementation
behave the same where both count (the message rate); Redis also counts sockets."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import pytest

from gateway.limits import KeyLimits, LocalKeyLimits
from gateway.scaleout.limits import RedisKeyLimits
from tests.redis_server import RedisServer, running_redis

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

_prefixes = itertools.count()


def _redis(redis: RedisServer, prefix: str, instance: str, lease_s: float = 5.0) -> RedisKeyLimits:
    return RedisKeyLimits(redis.url, prefix=prefix, instance_id=instance, lease_s=lease_s)


@pytest.fixture(params=["memory", "redis"])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[KeyLimits]:
    built: KeyLimits
    if request.param == "redis":
        built = _redis(request.getfixturevalue("redis_server"), f"kl{next(_prefixes)}:", "i1")
    else:
        built = LocalKeyLimits()
    async with built.running():
        yield built


async def test_the_burst_passes_then_the_wait_is_one_token_time(limits: KeyLimits) -> None:
    waits = [await limits.take("k", 2.0, 3) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.3 < waits[3] <= 0.5  # 1 token at 2/s, minus what refilled meanwhile
    assert await limits.take("other", 2.0, 3) == 0.0  # keys are counted apart


async def test_sockets_count_across_instances_and_release(redis_server: RedisServer) -> None:
    prefix = f"kl{next(_prefixes)}:"
    one, two = _redis(redis_server, prefix, "one"), _redis(redis_server, prefix, "two")
    async with one.running(), two.running():
        assert await one.admit_socket("k", "s1", 2)
        assert await two.admit_socket("k", "s1", 2)  # another instance's s1
        assert not await two.admit_socket("k", "s2", 2)
        assert await two.admit_socket("j", "s2", 2)  # another key
        await one.release_socket("k", "s1")
        assert await two.admit_socket("k", "s3", 2)


async def test_a_dead_instances_sockets_lapse_after_the_lease(redis_server: RedisServer) -> None:
    prefix = f"kl{next(_prefixes)}:"
    lease_s = 1.0
    survivor = _redis(redis_server, prefix, "survivor", lease_s=lease_s)
    async with survivor.running():
        dead = _redis(redis_server, prefix, "dead", lease_s=lease_s)
        async with dead.running():
            assert await dead.admit_socket("k", "s1", 1)
            dead._mine.clear()  # it "dies": its entry is neither refreshed nor removed
        assert not await survivor.admit_socket("k", "s2", 1)
        assert await survivor.admit_socket("k", "mine", 2)
        # Time passing is what is tested: past one lease the dead entry has lapsed,
        # while the survivor's own entry, re-scored meanwhile, still counts.
        await anyio.sleep(lease_s * 1.5)
        assert await survivor.admit_socket("k", "s2", 2)
        assert not await survivor.admit_socket("k", "s3", 2)


async def test_with_redis_unreachable_the_shared_limits_fail_open_and_come_back() -> None:
    lease_s = 0.6
    with running_redis() as server:
        limits = _redis(server, "kl-outage:", "i1", lease_s=lease_s)
        async with limits.running():
            assert [await limits.take("k", 0.01, 1) for _ in range(2)][1] > 0
            assert await limits.admit_socket("k", "s1", 1)
            server.stop()
            # Each instance's own limits still apply meanwhile (the per-socket bucket,
            # the local per-key count); the shared ones do not refuse.
            assert await limits.take("k", 0.01, 1) == 0.0
            assert await limits.admit_socket("k", "s2", 1)
            server.start()  # same port, data kept
            assert await limits.take("k", 0.01, 1) > 0
            await limits.release_socket("k", "s1")
            # The socket admitted during the outage is counted again by the next
            # refresh (every third of the lease): time passing is what is tested.
            await anyio.sleep(lease_s)
            assert not await limits.admit_socket("k", "s3", 1)
