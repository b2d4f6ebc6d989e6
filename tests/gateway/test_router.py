"""Router: name resolution, and retry / fallback / timeouts / closing around provider streams."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from gateway.errors import (
    ModelNotFound,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.providers import ProviderRegistry
from gateway.providers.base import (
    ChatMessage,
    ChatRequest,
    Completion,
    Finish,
    ModelInfo,
    StreamEvent,
    TextDelta,
)
from gateway.router import Route, Router, Target
from gateway.settings import Settings, load_settings

# --- resolution ------------------------------------------------------------------


def _resolving_router(**overrides: Any) -> Router:
    base: dict[str, Any] = {
        "openai_api_key": "sk-test",
        "anthropic_api_key": "sk-ant-test",
        "ollama_base_url": "http://127.0.0.1:1",
        "ollama_models": ["mistral"],
    }
    settings = load_settings(**{**base, **overrides})
    return Router(settings, ProviderRegistry(settings))


@pytest.mark.parametrize(
    ("name", "provider", "model"),
    [
        ("gpt-4o", "openai", "gpt-4o"),
        ("o1-mini", "openai", "o1-mini"),
        ("o3", "openai", "o3"),
        ("o4-mini", "openai", "o4-mini"),
        ("chatgpt-4o-latest", "openai", "chatgpt-4o-latest"),
        ("ft:gpt-4o-mini:acme::abc123", "openai", "ft:gpt-4o-mini:acme::abc123"),
        ("claude-3-5-sonnet", "anthropic", "claude-3-5-sonnet"),
        ("llama3:8b", "ollama", "llama3:8b"),
        ("gpt-oss:20b", "ollama", "gpt-oss:20b"),
        ("mistral", "ollama", "mistral"),
        ("library/llama3:8b", "ollama", "library/llama3:8b"),
        ("openai/x", "openai", "x"),
        ("anthropic/x", "anthropic", "x"),
        ("ollama/a/b:c", "ollama", "a/b:c"),
        ("ollama/library/llama3:8b", "ollama", "library/llama3:8b"),
        ("demo/echo", "demo", "echo"),
    ],
)
def test_resolution_table(name: str, provider: str, model: str) -> None:
    route = _resolving_router().resolve(name)
    assert route == Route(name, (Target(provider, model),))


def test_alias_resolves_through_other_aliases() -> None:
    router = _resolving_router(aliases={"fast": "smart", "smart": "anthropic/claude-3-5-haiku"})
    assert router.resolve("fast").targets == (Target("anthropic", "claude-3-5-haiku"),)
    assert router.resolve("fast").requested_model == "fast"


def test_alias_wins_over_inference() -> None:
    router = _resolving_router(aliases={"gpt-4o": "demo/echo"})
    assert router.resolve("gpt-4o").targets == (Target("demo", "echo"),)


@pytest.mark.parametrize("name", ["a", "b", "self"])
def test_alias_cycle_is_model_not_found(name: str) -> None:
    router = _resolving_router(aliases={"a": "b", "b": "a", "self": "self"})
    with pytest.raises(ModelNotFound, match="alias cycle") as caught:
        router.resolve(name)
    assert caught.value.param == "model"


@pytest.mark.parametrize("name", ["mystery-model", "foo/bar", "", "openai/"])
def test_unknown_name_is_model_not_found(name: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        _resolving_router(aliases={"fast": "demo/echo"}).resolve(name)
    assert caught.value.param == "model"
    assert caught.value.http_status == 404


def test_unknown_name_message_explains_resolution() -> None:
    with pytest.raises(ModelNotFound) as caught:
        _resolving_router(aliases={"fast": "demo/echo"}).resolve("mystery")
    message = caught.value.message
    for hint in ("fast", "provider/model", "openai", "gpt-*", "claude-*", "anthropic", "ollama"):
        assert hint in message


@pytest.mark.parametrize(
    ("name", "provider"),
    [("claude-3-5-sonnet", "anthropic"), ("llama3:8b", "ollama"), ("openai/gpt-4o", "openai")],
)
def test_known_family_without_configured_provider(name: str, provider: str) -> None:
    settings = load_settings(openai_api_key=None, anthropic_api_key=None, ollama_base_url=None)
    router = Router(settings, ProviderRegistry(settings))
    with pytest.raises(ModelNotFound, match=f"'{provider}', which is not configured"):
        router.resolve(name)


def test_fallback_chain_skips_unconfigured_and_duplicates() -> None:
    router = _resolving_router(
        anthropic_api_key=None,
        aliases={"primary": "ollama/main:1"},
        fallbacks={"primary": ["ollama/backup:1", "claude-3-5-haiku", "ollama/main:1", "o3"]},
    )
    route = router.resolve("primary")
    assert route.targets == (
        Target("ollama", "main:1"),
        Target("ollama", "backup:1"),
        Target("openai", "o3"),
    )


def test_fallbacks_keyed_by_the_resolved_name() -> None:
    router = _resolving_router(
        aliases={"fast": "gpt-4o-mini"},
        fallbacks={"gpt-4o-mini": ["demo/echo"], "openai/gpt-4o": ["claude-3-5-haiku"]},
    )
    assert router.resolve("fast").targets[1:] == (Target("demo", "echo"),)
    assert router.resolve("gpt-4o").targets[1:] == (Target("anthropic", "claude-3-5-haiku"),)


def test_aliases_listing_leaves_out_unconfigured() -> None:
    router = _resolving_router(
        anthropic_api_key=None,
        aliases={"fast": "demo/echo", "smart": "claude-3-5-sonnet"},
    )
    assert router.aliases() == {"fast": Route("fast", (Target("demo", "echo"),))}


# --- delivery: scripted providers --------------------------------------------------


@dataclass
class Step:
    """What one call to a scripted provider does."""

    open_error: UpstreamError | None = None  # raised when the stream is opened
    events: Sequence[StreamEvent | UpstreamError] = (TextDelta("hi"), Finish("stop"))
    hang: bool = False  # after the events, wait forever (a stalled upstream)


class ScriptedProvider:
    """A Provider whose calls follow a script; records every request and every close."""

    def __init__(self, name: str, *steps: Step) -> None:
        self._name = name
        self._steps = deque(steps)
        self.requests: list[ChatRequest] = []
        self.exits: list[type[BaseException] | None] = []  # one per stream context exited
        self.hanging = anyio.Event()

    @property
    def name(self) -> str:
        return self._name

    @asynccontextmanager
    async def stream(self, request: ChatRequest) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        self.requests.append(request)
        step = self._steps.popleft() if self._steps else Step()
        if step.open_error is not None:
            raise step.open_error
        try:
            yield self._events(step)
        except BaseException as exc:
            self.exits.append(type(exc))
            raise
        else:
            self.exits.append(None)

    async def _events(self, step: Step) -> AsyncIterator[StreamEvent]:
        for item in step.events:
            if isinstance(item, UpstreamError):
                raise item
            yield item
        if step.hang:
            self.hanging.set()
            await anyio.sleep_forever()

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        step = self._steps.popleft() if self._steps else Step()
        if step.open_error is not None:
            raise step.open_error
        text = "".join(e.text for e in step.events if isinstance(e, TextDelta))
        return Completion(text, "stop", None, request.model)

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def probe(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass
class FakeRegistry:
    providers: dict[str, ScriptedProvider]
    known: tuple[str, ...] = ("openai", "anthropic", "ollama", "demo")

    def is_configured(self, name: str) -> bool:
        return name in self.providers

    def get(self, name: str) -> ScriptedProvider:
        return self.providers[name]


@dataclass
class Harness:
    router: Router
    sleeps: list[float] = field(default_factory=list)


def _harness(
    *providers: ScriptedProvider, random: Callable[[], float] = lambda: 0.5, **overrides: Any
) -> Harness:
    settings: Settings = load_settings(**overrides)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    registry = FakeRegistry({p.name: p for p in providers})
    return Harness(Router(settings, registry, sleep=sleep, random=random), sleeps)


ROUTE = Route("primary", (Target("openai", "main"), Target("anthropic", "backup")))
REQUEST = ChatRequest("primary", (ChatMessage("user", "hello"),))


def _unavailable(retry_after_ms: int | None = None) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        "openai returned HTTP 503: overloaded",
        provider="openai",
        upstream_status=503,
        retryable=True,
        retry_after_ms=retry_after_ms,
    )


async def _collect(router: Router, route: Route = ROUTE) -> tuple[Target, list[StreamEvent]]:
    async with router.stream(route, REQUEST) as stream:
        return stream.target, [event async for event in stream]


ANSWER = [TextDelta("hi"), Finish("stop")]


@pytest.mark.anyio
async def test_retry_then_fallback_on_retryable_error_before_first_token() -> None:
    primary = ScriptedProvider("openai", Step(_unavailable()), Step(_unavailable()))
    backup = ScriptedProvider("anthropic")
    h = _harness(primary, backup, retry={"max_attempts": 2})

    target, events = await _collect(h.router)

    assert target == Target("anthropic", "backup")
    assert events == ANSWER
    assert [r.model for r in primary.requests] == ["main", "main"]
    assert [r.model for r in backup.requests] == ["backup"]
    assert backup.requests[0].messages == REQUEST.messages
    assert h.sleeps == [0.25]  # one backoff between the two attempts, none before fallback


@pytest.mark.anyio
async def test_error_on_first_event_is_retried_and_closes_that_attempt() -> None:
    primary = ScriptedProvider("openai", Step(events=[_unavailable()]))
    h = _harness(primary, ScriptedProvider("anthropic"))

    target, events = await _collect(h.router)

    assert target == Target("openai", "main")
    assert events == ANSWER
    assert primary.exits == [UpstreamUnavailable, None]


@pytest.mark.anyio
async def test_no_retry_or_fallback_after_first_token() -> None:
    primary = ScriptedProvider("openai", Step(events=[TextDelta("par"), _unavailable()]))
    backup = ScriptedProvider("anthropic")
    h = _harness(primary, backup)
    seen: list[StreamEvent] = []

    with pytest.raises(UpstreamUnavailable):
        async with h.router.stream(ROUTE, REQUEST) as stream:
            async for event in stream:
                seen.append(event)

    assert seen == [TextDelta("par")]
    assert len(primary.requests) == 1
    assert backup.requests == []
    assert h.sleeps == []
    assert primary.exits == [UpstreamUnavailable]


@pytest.mark.anyio
async def test_retry_after_is_honoured() -> None:
    primary = ScriptedProvider("openai", Step(_unavailable(retry_after_ms=1500)))
    h = _harness(primary, ScriptedProvider("anthropic"))

    target, _ = await _collect(h.router)

    assert target == Target("openai", "main")
    assert h.sleeps == [1.5]


@pytest.mark.anyio
async def test_retry_after_above_cap_skips_to_next_target() -> None:
    primary = ScriptedProvider("openai", Step(_unavailable(retry_after_ms=20_000)))
    backup = ScriptedProvider("anthropic")
    h = _harness(primary, backup, retry={"max_attempts": 3, "max_retry_after_s": 10})

    target, _ = await _collect(h.router)

    assert target == Target("anthropic", "backup")
    assert len(primary.requests) == 1
    assert h.sleeps == []


@pytest.mark.anyio
async def test_backoff_is_exponential_capped_and_jittered() -> None:
    errors = [Step(_unavailable()) for _ in range(3)]
    h = _harness(
        ScriptedProvider("openai", *errors),
        random=lambda: 1.0,  # the top of the jitter range
        retry={"max_attempts": 4, "backoff_initial_s": 0.1, "backoff_max_s": 0.3, "jitter": 0.5},
    )

    target, _ = await _collect(h.router, Route("m", (Target("openai", "main"),)))

    assert target == Target("openai", "main")
    assert h.sleeps == pytest.approx([0.15, 0.3, 0.45])


@pytest.mark.anyio
async def test_bad_request_raises_at_once() -> None:
    bad = UpstreamBadRequest(
        "openai returned HTTP 400: bad", provider="openai", upstream_status=400
    )
    primary = ScriptedProvider("openai", Step(bad))
    backup = ScriptedProvider("anthropic")
    h = _harness(primary, backup)

    with pytest.raises(UpstreamBadRequest):
        await _collect(h.router)

    assert len(primary.requests) == 1
    assert backup.requests == []
    assert h.sleeps == []


@pytest.mark.anyio
async def test_auth_failure_is_not_retried_but_falls_back() -> None:
    denied = UpstreamAuthFailed("openai returned HTTP 401", provider="openai", upstream_status=401)
    primary = ScriptedProvider("openai", Step(denied))
    backup = ScriptedProvider("anthropic")
    h = _harness(primary, backup, retry={"max_attempts": 3})

    target, _ = await _collect(h.router)

    assert target == Target("anthropic", "backup")
    assert len(primary.requests) == 1
    assert h.sleeps == []


@pytest.mark.anyio
async def test_last_error_raised_when_every_target_fails() -> None:
    denied = UpstreamAuthFailed("anthropic returned HTTP 401", provider="anthropic")
    h = _harness(
        ScriptedProvider("openai", Step(_unavailable())),
        ScriptedProvider("anthropic", Step(denied)),
        retry={"max_attempts": 1},
    )

    with pytest.raises(UpstreamAuthFailed):
        await _collect(h.router)


@pytest.mark.anyio
async def test_first_token_timeout_falls_back_and_closes_the_stalled_stream() -> None:
    primary = ScriptedProvider("openai", Step(events=[], hang=True))
    backup = ScriptedProvider("anthropic")
    h = _harness(primary, backup, retry={"max_attempts": 1}, timeouts={"first_token_s": 0.05})

    with anyio.fail_after(2):
        target, events = await _collect(h.router)

    assert target == Target("anthropic", "backup")
    assert events == ANSWER
    assert primary.exits == [TimeoutError]


@pytest.mark.anyio
async def test_first_token_timeout_on_last_target_is_upstream_timeout() -> None:
    h = _harness(
        ScriptedProvider("openai", Step(events=[], hang=True)),
        retry={"max_attempts": 1},
        timeouts={"first_token_s": 0.05},
    )
    with anyio.fail_after(2), pytest.raises(UpstreamTimeout) as caught:
        await _collect(h.router, Route("m", (Target("openai", "main"),)))
    assert caught.value.retryable


@pytest.mark.anyio
async def test_total_deadline_checked_as_events_arrive() -> None:
    events = [TextDelta("a"), TextDelta("b"), Finish("stop")]
    provider = ScriptedProvider("openai", Step(events=events))
    h = _harness(provider, timeouts={"total_s": 0.05})
    route = Route("m", (Target("openai", "main"),))

    with pytest.raises(UpstreamTimeout, match="total time limit"):
        async with h.router.stream(route, REQUEST) as stream:
            async for event in stream:
                assert event == TextDelta("a")
                await anyio.sleep(0.1)  # a slow consumer: the deadline passes meanwhile

    assert provider.exits == [UpstreamTimeout]


@pytest.mark.anyio
async def test_leaving_early_closes_the_provider_stream() -> None:
    provider = ScriptedProvider("openai", Step(events=ANSWER, hang=True))
    h = _harness(provider)

    async with h.router.stream(ROUTE, REQUEST) as stream:
        async for _ in stream:
            break
        assert provider.exits == []

    assert provider.exits == [None]


@pytest.mark.anyio
async def test_caller_error_is_passed_to_the_provider_stream() -> None:
    provider = ScriptedProvider("openai")
    h = _harness(provider)

    with pytest.raises(LookupError):
        async with h.router.stream(ROUTE, REQUEST):
            raise LookupError

    assert provider.exits == [LookupError]


@pytest.mark.anyio
async def test_cancellation_from_outside_closes_the_provider_stream() -> None:
    provider = ScriptedProvider("openai", Step(events=[TextDelta("a")], hang=True))
    h = _harness(provider)
    received: list[StreamEvent] = []

    async def consume() -> None:
        async with h.router.stream(ROUTE, REQUEST) as stream:
            async for event in stream:
                received.append(event)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await provider.hanging.wait()
            tg.cancel_scope.cancel()

    assert received == [TextDelta("a")]
    assert provider.exits == [anyio.get_cancelled_exc_class()]


@pytest.mark.anyio
async def test_cancellation_while_waiting_for_first_token_closes_it() -> None:
    provider = ScriptedProvider("openai", Step(events=[], hang=True))
    h = _harness(provider)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect, h.router)
            await provider.hanging.wait()
            tg.cancel_scope.cancel()

    assert provider.exits == [anyio.get_cancelled_exc_class()]
    assert h.sleeps == []


@pytest.mark.anyio
async def test_complete_retries_and_falls_back() -> None:
    primary = ScriptedProvider("openai", Step(_unavailable()), Step(_unavailable(1000)))
    backup = ScriptedProvider("anthropic", Step(events=[TextDelta("fine")]))
    h = _harness(primary, backup)

    target, completion = await h.router.complete(ROUTE, REQUEST)

    assert target == Target("anthropic", "backup")
    assert completion.text == "fine"
    assert completion.model == "backup"
    assert len(primary.requests) == 2
    assert h.sleeps == [0.25]


@pytest.mark.anyio
async def test_complete_bad_request_raises_at_once() -> None:
    bad = UpstreamBadRequest("bad", provider="openai", upstream_status=422)
    backup = ScriptedProvider("anthropic")
    h = _harness(ScriptedProvider("openai", Step(bad)), backup)

    with pytest.raises(UpstreamBadRequest):
        await h.router.complete(ROUTE, REQUEST)
    assert backup.requests == []


def test_registry_satisfies_router_protocol() -> None:
    settings = load_settings(openai_api_key="sk-test")
    registry = ProviderRegistry(settings)
    router = Router(settings, registry)
    assert router.resolve("gpt-4o").targets == (Target("openai", "gpt-4o"),)
