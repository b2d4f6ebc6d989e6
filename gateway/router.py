"""Model name -> provider target(s); retries and fallback before the first token.

Resolution (:meth:`Router.resolve`), first match wins:

1. a configured alias (``settings.aliases``), followed until it is no alias (cycles
   are reported as :class:`ModelNotFound`);
2. an explicit ``provider/model`` prefix naming a known provider (the rest is the
   provider's own name and may itself contain ``/`` and ``:``, as Ollama's do);
3. inference from the name, by the one table :data:`_INFERENCE`.

The provider found must be configured, otherwise the name is a
:class:`ModelNotFound` too (one error for "no such model here", whatever the
reason; the message says which provider is missing). ``settings.fallbacks`` then
appends further targets, each resolved the same way; fallbacks whose provider is
not configured are skipped.

Delivery (:meth:`Router.stream`, :meth:`Router.complete`): each target gets up to
``retry.max_attempts`` attempts for retryable upstream errors, then the next
target is tried. A stream counts as answered once its first event has arrived;
from then on nothing is retried, since the caller may already have shown text.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Final, Protocol, TypeVar

import anyio
import structlog

from gateway.circuit import CircuitBreakers
from gateway.errors import (
    ModelNotFound,
    UnsupportedParameter,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.providers.base import (
    ChatRequest,
    Completion,
    Provider,
    StreamEvent,
    abort_stream,
    check_request,
)
from gateway.settings import Settings

_log = structlog.get_logger("gateway.router")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Target:
    provider: str  # registry name: openai | anthropic | ollama | demo
    model: str  # the provider's own model name

    @property
    def qualified(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Route:
    requested_model: str
    targets: tuple[Target, ...]  # primary first, then the fallback chain


class DeliveryObserver(Protocol):
    """Told of each failed attempt, retry and fallback (``gateway.metrics.Metrics`` is one)."""

    def upstream_failed(self, provider: str, code: str) -> None: ...

    def retried(self, provider: str) -> None: ...

    def fell_back(self, from_provider: str, to_provider: str) -> None: ...


class _Unobserved:
    def upstream_failed(self, provider: str, code: str) -> None:
        return None

    def retried(self, provider: str) -> None:
        return None

    def fell_back(self, from_provider: str, to_provider: str) -> None:
        return None


class ProviderSource(Protocol):
    """What the router needs from a provider registry (``ProviderRegistry`` is one)."""

    @property
    def known(self) -> Collection[str]: ...

    def is_configured(self, name: str) -> bool: ...

    def get(self, name: str) -> Provider: ...


# --- name inference ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    provider: str
    shown: str  # how the rule reads in the "unknown model" message
    prefixes: tuple[str, ...] = ()
    tagged: bool = False  # ``name:tag`` is Ollama's naming convention
    listed: bool = False  # one of ``settings.ollama_models``

    def matches(self, name: str, listed: Collection[str]) -> bool:
        return (
            name.startswith(self.prefixes)
            or (self.tagged and ":" in name)
            or (self.listed and name in listed)
        )


# Order matters: configured Ollama names win over families (``gpt-oss:20b`` is an
# Ollama model), and OpenAI fine-tunes (``ft:gpt-4o:org::id``) have colons too.
_INFERENCE: Final[tuple[_Rule, ...]] = (
    _Rule("ollama", "a name listed in ollama_models", listed=True),
    _Rule("openai", "ft:*", prefixes=("ft:",)),
    _Rule("ollama", "name:tag", tagged=True),
    _Rule(
        "openai",
        "gpt-*, o1*, o3*, o4*, chatgpt-*",
        prefixes=("gpt-", "o1", "o3", "o4", "chatgpt-"),
    ),
    _Rule("anthropic", "claude-*", prefixes=("claude-",)),
)

_MAX_NAME_IN_MESSAGE = 120


# --- streaming -----------------------------------------------------------------


class RoutedStream:
    """Events of the target that answered; ``target`` is final once iteration starts.

    Two wall-clock deadlines hold from the first event on, and fire on their own:
    the idle one (``between_tokens_s`` waiting for the next *event*, however many
    bytes trickle in meanwhile) and the total one. One loop timer watches both,
    waking once per idle period rather than per token; the per-token cost is a
    clock read. When a deadline passes, the timer aborts the upstream connection
    (so the provider stops generating and the pending read fails at once) and the
    iteration raises :class:`UpstreamTimeout` in place of whatever the provider
    raised for the cut. Time the consumer spends between events (a slow client)
    does not count as idle: only waiting for the upstream does.
    """

    __slots__ = (
        "_deadline",
        "_events",
        "_expired",
        "_first",
        "_idle_s",
        "_loop",
        "_next",
        "_timer",
        "_waiting_since",
        "target",
    )

    def __init__(
        self,
        target: Target,
        first: StreamEvent,
        events: AsyncIterator[StreamEvent],
        *,
        remaining_s: float,
        idle_s: float,
    ) -> None:
        self.target = target
        self._first: StreamEvent | None = first
        self._events = events
        self._next = events.__anext__
        self._loop = loop = asyncio.get_running_loop()
        now = loop.time()
        self._deadline = now + remaining_s
        self._idle_s = idle_s
        self._waiting_since: float | None = None  # loop time the consumer began waiting
        self._expired: str | None = None  # which limit was hit, once one was
        self._timer: asyncio.TimerHandle | None = loop.call_at(
            min(self._deadline, now + idle_s), self._watch
        )

    def abort(self) -> None:
        """Cut the answering provider's connection off now (see ``Abortable``).

        Synchronous and never raises; leaving the ``async with`` still closes it.
        """
        abort_stream(self._events)

    def close(self) -> None:
        """Stop watching the deadlines (the stream is being left); idempotent."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._expired is not None:
            raise self._timeout()
        self._waiting_since = self._loop.time()
        try:
            event = await self._next()
        except Exception:
            if self._expired is not None:  # the cut made the provider fail: say why
                raise self._timeout() from None
            raise
        finally:
            self._waiting_since = None
        if self._expired is not None:
            raise self._timeout()
        return event

    def _watch(self) -> None:
        """The timer: expire the stream if a deadline passed, else sleep until the next."""
        self._timer = None
        now = self._loop.time()
        waiting = self._waiting_since
        if now >= self._deadline:
            self._expire("total")
            return
        if waiting is not None and now >= waiting + self._idle_s:
            self._expire("idle")
            return
        # Not waiting: an idle period can start no earlier than now.
        idle_end = (waiting if waiting is not None else now) + self._idle_s
        self._timer = self._loop.call_at(min(self._deadline, idle_end), self._watch)

    def _expire(self, limit: str) -> None:
        self._expired = limit
        abort_stream(self._events)

    def _timeout(self) -> UpstreamTimeout:
        provider = self.target.provider
        if self._expired == "idle":
            message = f"{provider} sent no event within {self._idle_s:g} s"
        else:
            message = "the response exceeded the total time limit"
        return UpstreamTimeout(message, provider=provider)


@dataclass(slots=True)
class _Opened:
    """A provider stream that has produced its first event, still open."""

    context: AbstractAsyncContextManager[AsyncIterator[StreamEvent]]
    events: AsyncIterator[StreamEvent]
    first: StreamEvent


class _StreamContext:
    """``async with router.stream(...)``: picks a target on enter, closes it on exit."""

    __slots__ = ("_inner", "_request", "_route", "_router", "_stream")

    def __init__(self, router: Router, route: Route, request: ChatRequest) -> None:
        self._router = router
        self._route = route
        self._request = request
        self._inner: AbstractAsyncContextManager[AsyncIterator[StreamEvent]] | None = None
        self._stream: RoutedStream | None = None

    async def __aenter__(self) -> RoutedStream:
        router = self._router
        deadline = router._clock() + router._total_s
        target, opened = await router._deliver(
            self._route, self._request, deadline, router._open_stream, streamed=True
        )
        self._inner = opened.context
        self._stream = RoutedStream(
            target,
            opened.first,
            opened.events,
            remaining_s=deadline - router._clock(),
            idle_s=router._idle_s,
        )
        return self._stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        inner, self._inner = self._inner, None
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if inner is None:
            return None
        # The provider's own exit closes the upstream HTTP response, whatever ended us.
        return await inner.__aexit__(exc_type, exc, tb)


# --- the router ----------------------------------------------------------------


class Router:
    """Resolves model names to targets and delivers requests with retry and fallback.

    ``sleep`` and ``random`` (uniform in [0, 1), for jitter) are injectable so
    tests can observe backoff delays without waiting for them; ``clock`` (seconds,
    monotonic) measures the total deadline while targets are tried. (Once a stream
    answers, its deadlines are event-loop timers: :class:`RoutedStream`.)
    """

    def __init__(
        self,
        settings: Settings,
        providers: ProviderSource,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        random: Callable[[], float] = _random.random,
        breakers: CircuitBreakers | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self._settings = settings
        self._providers = providers
        self._sleep = sleep
        self._random = random
        self.breakers = breakers or CircuitBreakers(settings.circuit_breaker, clock=clock)
        self._clock = clock
        self._observer: DeliveryObserver = observer or _Unobserved()
        self._known = frozenset(providers.known)
        self._ollama_models = frozenset(settings.ollama_models)
        self._retry = settings.retry
        self._first_token_s = settings.timeouts.first_token_s
        self._total_s = settings.timeouts.total_s
        self._idle_s = settings.timeouts.between_tokens_s

    # --- resolution ---

    def resolve(self, model: str) -> Route:
        """The route for a requested name. Raises :class:`ModelNotFound` (param ``model``)."""
        chain = self._alias_chain(model)
        primary = self._target(chain[-1], requested=model)
        targets = [primary]
        for name in self._fallbacks_for((*chain, primary.qualified)):
            try:
                target = self._target(name, requested=name)
            except ModelNotFound:
                continue  # provider not configured here: the chain just gets shorter
            if target not in targets:
                targets.append(target)
        return Route(model, tuple(targets))

    def aliases(self) -> dict[str, Route]:
        """Every configured alias that resolves here, with its route (for model listings).

        Aliases whose provider is not configured are left out.
        """
        routes: dict[str, Route] = {}
        for alias in self._settings.aliases:
            try:
                routes[alias] = self.resolve(alias)
            except ModelNotFound:
                continue
        return routes

    def _alias_chain(self, model: str) -> tuple[str, ...]:
        """``model`` and every name it is an alias of, in order (the last is no alias)."""
        aliases = self._settings.aliases
        chain = [model]
        name = model
        while name in aliases:
            name = aliases[name]
            if name in chain:
                loop = " -> ".join((*chain, name))
                raise ModelNotFound(f"alias cycle: {_clip(loop)}", param="model")
            chain.append(name)
        return tuple(chain)

    def _fallbacks_for(self, names: tuple[str, ...]) -> list[str]:
        """The fallback list of the first name along the alias chain that has one."""
        fallbacks = self._settings.fallbacks
        for name in names:
            listed = fallbacks.get(name)
            if listed is not None:
                return listed
        return []

    def _target(self, name: str, *, requested: str) -> Target:
        provider, sep, rest = name.partition("/")
        if sep and provider in self._known:
            if not rest:
                raise ModelNotFound(f"model name missing after '{provider}/'", param="model")
            target = Target(provider, rest)
        else:
            rule = next((r for r in _INFERENCE if r.matches(name, self._ollama_models)), None)
            if rule is None:
                raise ModelNotFound(self._unknown_message(requested), param="model")
            target = Target(rule.provider, name)
        if not self._providers.is_configured(target.provider):
            raise ModelNotFound(
                f"model '{_clip(requested)}' needs provider '{target.provider}', "
                "which is not configured",
                param="model",
            )
        return target

    def _unknown_message(self, model: str) -> str:
        inferred = "; ".join(f"{r.shown} -> {r.provider}" for r in _INFERENCE)
        providers = ", ".join(sorted(self._known))
        aliases = ", ".join(sorted(self._settings.aliases)) or "none configured"
        return (
            f"unknown model '{_clip(model)}'. Names resolve as: an alias ({_clip(aliases)}); "
            f"'provider/model' with provider one of {providers}; or by name: {inferred}"
        )

    def check(self, route: Route, request: ChatRequest, *, streamed: bool) -> None:
        """Refuse, before anything starts, what the primary target cannot honour.

        Raises :class:`UnsupportedParameter`. Delivery checks every target again;
        this is for surfaces that announce a response before delivering it (the
        socket's ``response.created``), so that a refusal is a refusal and not a
        failed response blamed on the provider.
        """
        primary = route.targets[0]
        provider = self._providers.get(primary.provider)
        check_request(provider, replace(request, model=primary.model), streamed=streamed)

    # --- delivery ---

    def stream(
        self, route: Route, request: ChatRequest
    ) -> AbstractAsyncContextManager[RoutedStream]:
        """``request.model`` is replaced per target. Retries / falls back only before
        the first event has been yielded to the caller."""
        return _StreamContext(self, route, request)

    async def complete(self, route: Route, request: ChatRequest) -> tuple[Target, Completion]:
        """One non-streamed answer, with the same retry and fallback policy as streams."""
        deadline = self._clock() + self._total_s
        return await self._deliver(route, request, deadline, self._complete_once, streamed=False)

    async def _deliver(
        self,
        route: Route,
        request: ChatRequest,
        deadline: float,
        attempt: Callable[[Provider, ChatRequest, float], Awaitable[_T]],
        *,
        streamed: bool,
    ) -> tuple[Target, _T]:
        """Try each target in turn; raise the last upstream error if all fail.

        Each target is first checked for what it can honour: the primary's refusal is
        the answer (:class:`UnsupportedParameter`); a fallback that would refuse is
        skipped, since answering without a parameter would answer another question.
        """
        last: UpstreamError | None = None
        max_attempts = self._retry.max_attempts
        for index, target in enumerate(route.targets):
            if last is not None:
                _log.warning(
                    "upstream_fallback",
                    target=target.qualified,
                    previous=route.targets[index - 1].qualified,
                    error=last.code,
                    upstream_status=last.upstream_status,
                    detail=last.detail,
                )
                self._observer.fell_back(route.targets[index - 1].provider, target.provider)
            provider = self._providers.get(target.provider)
            per_target = replace(request, model=target.model)
            try:
                check_request(provider, per_target, streamed=streamed)
            except UnsupportedParameter as refusal:
                if last is None:
                    raise
                _log.warning(
                    "upstream_fallback_skipped", target=target.qualified, param=refusal.param
                )
                continue
            for number in range(1, max_attempts + 1):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise UpstreamTimeout(
                        "no provider answered within the total time limit",
                        provider=target.provider,
                    ) from last
                try:
                    self.breakers.admit(target.provider)
                except UpstreamUnavailable as err:
                    last = err
                    break  # skipped at once: no load on an upstream that is down
                try:
                    result = await attempt(provider, per_target, remaining)
                except UpstreamBadRequest as err:
                    self._attempt_failed(target, err)
                    raise  # the request itself is wrong: elsewhere it would fail too
                except UpstreamError as err:
                    self._attempt_failed(target, err)
                    last = err
                except BaseException:
                    self.breakers.abandoned(target.provider)
                    raise
                else:
                    self.breakers.succeeded(target.provider)
                    return target, result
                delay = self._retry_delay(last, number, deadline)
                if delay is None:
                    break
                _log.info(
                    "upstream_retry",
                    target=target.qualified,
                    attempt=number,
                    delay_s=round(delay, 3),
                    error=last.code,
                    upstream_status=last.upstream_status,
                    detail=last.detail,
                )
                self._observer.retried(target.provider)
                await self._sleep(delay)
        assert last is not None  # a Route always has at least one target
        raise last

    def _attempt_failed(self, target: Target, err: UpstreamError) -> None:
        self.breakers.failed(target.provider, err)
        self._observer.upstream_failed(target.provider, err.code)

    def _retry_delay(self, err: UpstreamError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before retrying the same target, or None to move on."""
        policy = self._retry
        if not err.retryable or attempt >= policy.max_attempts:
            return None
        if err.retry_after_ms is not None:
            delay = err.retry_after_ms / 1000
            if delay > policy.max_retry_after_s:
                return None  # waiting that long is worse than another target
        else:
            base = min(policy.backoff_initial_s * 2 ** (attempt - 1), policy.backoff_max_s)
            delay = base * (1 + policy.jitter * (2 * self._random() - 1))
        if self._clock() + delay >= deadline:
            return None
        return delay

    async def _open_stream(
        self, provider: Provider, request: ChatRequest, remaining: float
    ) -> _Opened:
        """Open a stream and wait for its first event, both under the first-token timeout."""
        context = provider.stream(request)
        entered = False
        try:
            with anyio.fail_after(min(self._first_token_s, remaining)):
                events = await context.__aenter__()
                entered = True
                iterator = aiter(events)
                first = await anext(iterator)
        except BaseException as exc:
            if entered:
                # Close this attempt's upstream response before any retry or fallback.
                await context.__aexit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"{provider.name} sent nothing within the first-token timeout",
                    provider=provider.name,
                    retryable=True,
                ) from None
            if isinstance(exc, StopAsyncIteration):
                raise UpstreamError(
                    f"{provider.name} ended the stream without any event",
                    provider=provider.name,
                ) from None
            raise
        return _Opened(context, iterator, first)

    async def _complete_once(
        self, provider: Provider, request: ChatRequest, remaining: float
    ) -> Completion:
        try:
            with anyio.fail_after(remaining):
                return await provider.complete(request)
        except TimeoutError:
            raise UpstreamTimeout(
                f"{provider.name} did not answer within the total time limit",
                provider=provider.name,
                retryable=True,
            ) from None


def _clip(text: str) -> str:
    if len(text) <= _MAX_NAME_IN_MESSAGE:
        return text
    return text[: _MAX_NAME_IN_MESSAGE - 3] + "..."
