"""Circuit breakers: a failing provider is skipped for a while, then tried once, then trusted."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.circuit import CircuitBreakers, CircuitState
from gateway.errors import UpstreamBadRequest, UpstreamError, UpstreamUnavailable
from gateway.router import Route, Router
from gateway.settings import CircuitBreakerPolicy, load_settings
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app as openai_fake
from tests.gateway.http._support import gateway, user
from tests.gateway.test_router import (
    REQUEST,
    ROUTE,
    FakeRegistry,
    ScriptedProvider,
    Step,
    _unavailable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breakers(clock: Clock, **policy: Any) -> CircuitBreakers:
    settings = {"failure_threshold": 3, "open_s": 10.0, **policy}
    return CircuitBreakers(CircuitBreakerPolicy(**settings), clock=clock)


def failure(status: int = 503, retryable: bool = True) -> UpstreamError:
    return UpstreamError("down", provider="openai", upstream_status=status, retryable=retryable)


def test_consecutive_failures_open_the_circuit_and_it_refuses_with_a_wait() -> None:
    clock = Clock()
    cb = breakers(clock)
    for _ in range(2):
        cb.admit("openai")
        cb.failed("openai", failure())
    assert cb.state("openai") is CircuitState.CLOSED
    cb.failed("openai", failure())
    assert cb.state("openai") is CircuitState.OPEN
    clock.now += 4
    with pytest.raises(UpstreamUnavailable) as refused:
        cb.admit("openai")
    assert refused.value.retryable
    assert refused.value.retry_after_ms == 6000
    cb.admit("anthropic")  # other providers are not affected


def test_a_success_resets_the_count() -> None:
    cb = breakers(Clock())
    cb.failed("openai", failure())
    cb.failed("openai", failure())
    cb.succeeded("openai")
    cb.failed("openai", failure())
    cb.failed("openai", failure())
    assert cb.state("openai") is CircuitState.CLOSED


@pytest.mark.parametrize(
    "error",
    [failure(status=429), failure(status=400, retryable=False), failure(401, retryable=False)],
    ids=["rate limited", "bad request", "bad key"],
)
def test_failures_that_say_nothing_about_upstream_health_do_not_count(
    error: UpstreamError,
) -> None:
    cb = breakers(Clock(), failure_threshold=1)
    cb.failed("openai", error)
    assert cb.state("openai") is CircuitState.CLOSED


def test_after_the_open_period_exactly_one_trial_goes_through() -> None:
    clock = Clock()
    cb = breakers(clock, failure_threshold=1)
    cb.failed("openai", failure())
    clock.now += 10
    assert cb.state("openai") is CircuitState.HALF_OPEN
    cb.admit("openai")  # the trial
    with pytest.raises(UpstreamUnavailable):
        cb.admit("openai")  # everyone else waits for its outcome
    cb.succeeded("openai")
    assert cb.state("openai") is CircuitState.CLOSED
    cb.admit("openai")


def test_a_failed_trial_opens_again_and_an_abandoned_one_lets_the_next_try() -> None:
    clock = Clock()
    cb = breakers(clock, failure_threshold=3)
    for _ in range(3):
        cb.failed("openai", failure())
    clock.now += 10
    cb.admit("openai")
    cb.failed("openai", failure())
    assert cb.state("openai") is CircuitState.OPEN  # one failed trial is enough
    clock.now += 10
    cb.admit("openai")
    cb.abandoned("openai")  # cancelled: it told nothing
    cb.admit("openai")


def test_disabled_breakers_never_refuse() -> None:
    cb = breakers(Clock(), enabled=False, failure_threshold=1)
    cb.failed("openai", failure())
    cb.admit("openai")


# --- in the router --------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_open_circuit_skips_to_the_fallback_without_calling_the_provider() -> None:
    clock = Clock()
    primary = ScriptedProvider("openai", Step(_unavailable()), Step(_unavailable()))
    backup = ScriptedProvider("anthropic")
    settings = load_settings(retry={"max_attempts": 1})
    cb = breakers(clock, failure_threshold=2)

    async def no_sleep(delay: float) -> None:
        return None

    router = Router(
        settings,
        FakeRegistry({"openai": primary, "anthropic": backup}),
        sleep=no_sleep,
        breakers=cb,
    )
    for _ in range(4):
        async with router.stream(ROUTE, REQUEST) as stream:
            assert stream.target.provider == "anthropic"
            [_ async for _ in stream]
    assert len(primary.requests) == 2  # then the circuit was open: no more load on it
    assert len(backup.requests) == 4

    clock.now += 10  # the trial succeeds and the primary is trusted again
    async with router.stream(ROUTE, REQUEST) as stream:
        assert stream.target.provider == "openai"
        [_ async for _ in stream]
    assert cb.state("openai") is CircuitState.CLOSED


@pytest.mark.anyio
async def test_a_bad_request_ends_a_trial_without_opening() -> None:
    clock = Clock()
    bad = UpstreamBadRequest("no", provider="openai", upstream_status=400)
    primary = ScriptedProvider("openai", Step(_unavailable()), Step(bad))
    cb = breakers(clock, failure_threshold=1)
    router = Router(
        load_settings(retry={"max_attempts": 1}), FakeRegistry({"openai": primary}), breakers=cb
    )
    route = Route("primary", ROUTE.targets[:1])
    with pytest.raises(UpstreamUnavailable):
        async with router.stream(route, REQUEST):
            pass
    clock.now += 10
    with pytest.raises(UpstreamBadRequest):
        async with router.stream(route, REQUEST):
            pass
    router.breakers.admit("openai")  # the trial ended; the next request may go


# --- seen from outside ----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failing_upstream_stops_receiving_requests() -> None:
    upstream = FakeUpstream(Scenario(status=503))
    async with (
        serve(openai_fake(upstream)) as base,
        gateway(
            openai_base_url=f"{base}/v1",
            openai_api_key="sk-test",
            retry={"max_attempts": 1},
            circuit_breaker={"failure_threshold": 3, "open_s": 60},
        ) as gw,
        gw.http() as http,
    ):
        codes = []
        for _ in range(6):
            response = await http.post(
                "/api/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": user("hi")},
            )
            codes.append(response.status_code)
        last = response.json()["error"]
    assert codes == [503] * 6
    assert len(upstream.requests) == 3
    assert last["code"] == "upstream_unavailable"
    assert "circuit open" in last["message"]
    assert int(response.headers["retry-after"]) > 0
