"""The built-in demo provider: no network, always available, deterministic.

It lets the gateway (and its WebSocket demo) run offline and gives tests and
benchmarks a provider whose output is known in advance. Three models:

- ``echo``: streams the last user message back, word by word, exactly.
- ``lorem``: lorem-ipsum tokens, ``max_tokens`` of them (64 by default).
- ``triage``: a rule-based ITSM ticket triage, so the ``ticket-triage`` agent
  demo reads sensibly without a language model.
- ``tools``: a deterministic tool-calling model. Given tools, it calls one (the
  one ``tool_choice`` names, else the first) with the last user message as the
  argument its schema lists first (``query`` if none), streamed in pieces; on the
  next turn, with the tool results in the conversation, it answers from them.

Every model is deterministic, so ``seed`` is honoured trivially; only ``tools``
takes tools; images and the other options are refused (:meth:`DemoProvider.check`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import cycle, islice

import anyio
import orjson

from gateway.errors import ModelNotFound
from gateway.providers._support import Support
from gateway.providers.base import (
    ChatMessage,
    ChatRequest,
    Completion,
    Finish,
    FinishReason,
    ModelInfo,
    NamedTool,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from gateway.settings import Settings

_NAME = "demo"
_LOREM_DEFAULT_TOKENS = 64
# fmt: off
_LOREM = (
    "Lorem", "ipsum", "dolor", "sit", "amet,", "consectetur", "adipiscing", "elit,", "sed",
    "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua.",
    "Ut", "enim", "ad", "minim", "veniam,", "quis", "nostrud", "exercitation", "ullamco",
    "laboris", "nisi", "ut", "aliquip", "ex", "ea", "commodo", "consequat.",
)
# fmt: on
# Each token is a word with the whitespace before it; trailing whitespace is its own token.
_TOKEN_RE = re.compile(r"\s*\S+|\s+\Z")


def create(settings: Settings) -> DemoProvider:
    return DemoProvider(token_delay_s=settings.demo_token_delay_ms / 1000)


@dataclass(slots=True, frozen=True)
class _Script:
    tokens: list[str]
    reason: FinishReason
    input_tokens: int
    calls: tuple[_Call, ...] = ()


@dataclass(slots=True, frozen=True)
class _Call:
    id: str
    name: str
    pieces: tuple[str, ...]  # the JSON arguments, as streamed


_SUPPORT = Support(_NAME, options=frozenset({"seed", "user"}), images=False)
_TOOLS_SUPPORT = Support(
    _NAME,
    options=frozenset({"tools", "tool_choice", "parallel_tool_calls", "seed", "user"}),
    images=False,
)


class DemoProvider:
    def __init__(self, *, token_delay_s: float) -> None:
        self._delay_s = token_delay_s

    @property
    def name(self) -> str:
        return _NAME

    def check(self, request: ChatRequest, *, streamed: bool) -> None:
        # The list of demo models is closed: an unknown one is refused before anything
        # starts (a socket's session.update and response.create), not once it streams.
        _entry(request.model)
        support = _TOOLS_SUPPORT if request.model == "tools" else _SUPPORT
        support.check(request, streamed=streamed)

    @asynccontextmanager
    async def stream(self, request: ChatRequest) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        events = self._events(_script(request))
        try:
            yield events
        finally:
            # Closing the generator here, not at garbage collection, is what stops it
            # when the consumer breaks out, fails or is cancelled.
            await events.aclose()

    async def complete(self, request: ChatRequest) -> Completion:
        script = _script(request)
        return Completion(
            text="".join(script.tokens),
            finish_reason=script.reason,
            usage=Usage(script.input_tokens, len(script.tokens) + len(script.calls)),
            model=request.model,
            tool_calls=tuple(ToolCall(c.id, c.name, "".join(c.pieces)) for c in script.calls),
        )

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(id=name, owned_by=_NAME, description=description)
            for name, (_, description) in _MODELS.items()
        ]

    async def probe(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def _events(self, script: _Script) -> AsyncGenerator[StreamEvent, None]:
        delay = self._delay_s
        for index, token in enumerate(script.tokens):
            if delay and index:
                await anyio.sleep(delay)
            yield TextDelta(token)
        for index, call in enumerate(script.calls):
            yield ToolCallStart(index, call.id, call.name)
            for piece in call.pieces:
                if delay:
                    await anyio.sleep(delay)
                yield ToolCallDelta(index, piece)
        output = len(script.tokens) + len(script.calls)
        yield Finish(script.reason, Usage(script.input_tokens, output))


def _entry(model: str) -> tuple[_Builder, str]:
    entry = _MODELS.get(model)
    if entry is None:
        raise ModelNotFound(
            f"demo model '{model}' does not exist (available: {', '.join(_MODELS)})",
            param="model",
        )
    return entry


def _script(request: ChatRequest) -> _Script:
    entry = _entry(request.model)
    input_tokens = sum(len(m.text.split()) for m in request.messages)
    if request.model == "tools":
        script = _tools(request, input_tokens)
    else:
        build, _ = entry
        tokens, reason = build(request)
        script = _Script(tokens, reason, input_tokens)
    return _limited(script, request.params.stop, request.params.max_tokens)


def _limited(script: _Script, stop: tuple[str, ...], max_tokens: int | None) -> _Script:
    """The answer cut as a model cuts it: before the first stop sequence (``stop``),
    else after ``max_tokens`` tokens (``length``). Tool calls are left whole."""
    tokens, reason = script.tokens, script.reason
    text = "".join(tokens)
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    if cut >= 0:
        tokens, reason = _first_chars(tokens, cut), "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens, reason = tokens[:max_tokens], "length"
    if tokens is script.tokens:
        return script
    return _Script(tokens, reason, script.input_tokens, script.calls)


def _first_chars(tokens: list[str], count: int) -> list[str]:
    kept: list[str] = []
    for token in tokens:
        if count <= 0:
            break
        kept.append(token[:count])
        count -= len(token)
    return [t for t in kept if t]


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _last_user_message(messages: tuple[ChatMessage, ...]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    return ""


def _echo(request: ChatRequest) -> tuple[list[str], FinishReason]:
    return _tokens(_last_user_message(request.messages)), "stop"


def _lorem(request: ChatRequest) -> tuple[list[str], FinishReason]:
    limit = request.params.max_tokens
    count = _LOREM_DEFAULT_TOKENS if limit is None else limit
    words = islice(cycle(_LOREM), count)
    tokens = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    # With a limit the text is cut by it, the way a real model reports max_tokens.
    return tokens, "stop" if limit is None else "length"


# --- triage -----------------------------------------------------------------------

# First matching rule wins, so the more specific categories come first.
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("security", ("phishing", "malware", "virus", "ransomware", "suspicious", "breach", "hacked")),
    ("access", ("password", "login", "log in", "locked", "account", "access", "mfa", "2fa")),
    ("network", ("vpn", "wifi", "wi-fi", "network", "internet", "dns", "connection")),
    ("hardware", ("laptop", "printer", "monitor", "keyboard", "mouse", "screen", "battery")),
    ("software", ("install", "update", "crash", "outlook", "excel", "teams", "app", "license")),
)
_PRIORITIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "P1 critical",
        "a widespread outage or security incident",
        ("outage", "everyone", "all users", "production", "ransomware", "breach", "down"),
    ),
    (
        "P2 high",
        "the user is blocked from working",
        ("cannot", "can't", "unable", "blocked", "urgent", "not working", "locked"),
    ),
    (
        "P4 low",
        "a question or request with no impact on work",
        ("how do i", "question", "request", "would like", "nice to have"),
    ),
)
_DEFAULT_PRIORITY = ("P3 medium", "the user is affected but can keep working")


def _triage(request: ChatRequest) -> tuple[list[str], FinishReason]:
    ticket = _last_user_message(request.messages).strip()
    lowered = ticket.lower()
    category = next(
        (name for name, words in _CATEGORIES if any(w in lowered for w in words)), "other"
    )
    priority, reason = next(
        ((p, r) for p, r, words in _PRIORITIES if any(w in lowered for w in words)),
        _DEFAULT_PRIORITY,
    )
    first = re.split(r"(?<=[.!?])\s", " ".join(ticket.split()), maxsplit=1)[0]
    if len(first) > 120:
        first = first[:117].rstrip() + "..."
    summary = f"The user reports: {first.rstrip('.!?')}." if first else "The ticket is empty."
    text = (
        f"Summary: {summary}\n"
        f"Category: {category}\n"
        f"Priority: {priority} - {reason}.\n"
        "(Offline demo triage by keyword rules, not a language model.)"
    )
    return _tokens(text), "stop"


# --- tools ------------------------------------------------------------------------


def _tools(request: ChatRequest, input_tokens: int) -> _Script:
    messages = request.messages
    results = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message)
    if results:
        names = {c.id: c.name for m in messages for c in m.tool_calls}
        lines = [
            f"{names.get(r.tool_call_id or '', 'the tool')} returned: {r.text}"
            for r in reversed(results)
        ]
        return _Script(_tokens("\n".join(lines)), "stop", input_tokens)
    options = request.options
    tools = options.tools
    choice = options.tool_choice
    if not tools or choice == "none":
        text = "No tool to call. Give me tools and I will call one with your message."
        return _Script(_tokens(text), "stop", input_tokens)
    tool = tools[0]
    if isinstance(choice, NamedTool):
        tool = next((t for t in tools if t.name == choice.name), tool)
    properties = (tool.parameters or {}).get("properties")
    argument = next(iter(properties), "query") if isinstance(properties, dict) else "query"
    arguments = orjson.dumps({argument: _last_user_message(messages)}).decode()
    # Pieces of at most 8 characters: a real model's fragments are as short.
    pieces = tuple(arguments[i : i + 8] for i in range(0, len(arguments), 8))
    turn = sum(len(m.tool_calls) for m in messages)
    call = _Call(f"call_demo_{turn}", tool.name, pieces)
    return _Script([], "tool_calls", input_tokens, (call,))


_Builder = Callable[[ChatRequest], tuple[list[str], FinishReason]]
_MODELS: dict[str, tuple[_Builder, str]] = {
    "echo": (_echo, "Demo model (offline): streams your last message back word by word."),
    "lorem": (_lorem, "Demo model (offline): lorem ipsum, max_tokens tokens (64 by default)."),
    "triage": (
        _triage,
        "Demo model (offline): rule-based ITSM ticket triage (summary, category, priority).",
    ),
    "tools": (
        _echo,  # unused: tools has its own script builder
        "Demo model (offline): calls the first tool given with your message as its "
        "argument, then answers from the tool's result.",
    ),
}
