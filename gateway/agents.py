"""Agents: named presets (instructions, default model, parameters) chosen per request.

Agents are configuration (``[agents.<name>]`` in the TOML file), not code. The
:class:`Orchestrator` turns "agent + model + messages + params" into a routed
request: agent -> model -> provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from gateway.auth import Principal
from gateway.errors import AgentNotFound, RequestTooLarge, ValidationFailed
from gateway.providers.base import ChatMessage, ChatOptions, ChatParams, ChatRequest
from gateway.router import Route, Router
from gateway.settings import AgentConfig, Settings

# Which surface a request came in on. The OpenAI-compatible API has a default agent of
# its own (none unless configured); the chat-UI surfaces, the WebSocket and the UI
# Message Stream, share ws_default_agent.
Transport = Literal["http", "ws", "ui"]


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    description: str
    instructions: str
    model: str | None  # the configured model, or the demo model while only demo runs
    params: ChatParams

    @classmethod
    def from_config(cls, name: str, config: AgentConfig, *, offline: bool) -> Agent:
        params = ChatParams(
            temperature=config.temperature, max_tokens=config.max_tokens, top_p=config.top_p
        )
        model = config.run_on(offline=offline)
        return cls(name, config.description, config.instructions, model, params)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything needed to run one chat: where to send it and what to send."""

    route: Route
    request: ChatRequest  # ``model`` is the requested name; the router swaps in each target's
    agent: str | None


class Orchestrator:
    def __init__(self, settings: Settings, router: Router) -> None:
        self._router = router
        self._default_model = settings.default_model
        self._max_messages = settings.max_messages
        self._max_chars = settings.max_request_chars
        self._default_agents: dict[Transport, str | None] = {
            "http": settings.http_default_agent,
            "ws": settings.ws_default_agent,
            "ui": settings.ws_default_agent,
        }
        offline = not settings.real_provider_configured
        self.agents: dict[str, Agent] = {
            name: Agent.from_config(name, cfg, offline=offline)
            for name, cfg in settings.agents.items()
        }

    def model_of(self, agent: Agent) -> str:
        """The model a request naming this agent (and no model) goes to."""
        return agent.model or self._default_model

    def agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            raise AgentNotFound(f"unknown agent '{name}'", param="agent") from None

    def prepare(
        self,
        *,
        messages: Sequence[ChatMessage],
        transport: Transport,
        model: str | None = None,
        agent: str | None = None,
        params: ChatParams | None = None,
        options: ChatOptions | None = None,
        streamed: bool = True,
        caller: Principal | None = None,
    ) -> Prepared:
        """Resolve agent -> model -> route; check that ``caller`` may use the route,
        then that its provider can honour the request. Raises AgentNotFound /
        ModelNotFound / ValidationFailed / Forbidden / UnsupportedParameter.

        ``agent=None`` means the default agent of ``transport``
        (``settings.http_default_agent``, none unless configured, or
        ``settings.ws_default_agent``). Precedence: explicit model > the agent's model >
        the default model; explicit params > the agent's params. The agent's instructions
        become the first system message.
        """
        if not messages:
            raise ValidationFailed("messages must not be empty", param="messages")
        self._check_size(messages)
        agent = agent or self._default_agents[transport]
        preset = self.agent(agent) if agent is not None else None
        chosen = model or (preset.model if preset else None) or self._default_model
        route = self._router.resolve(chosen)
        merged = _merge_params(preset.params if preset else ChatParams(), params or ChatParams())
        full = tuple(messages)
        if preset is not None and preset.instructions:
            full = (ChatMessage("system", preset.instructions), *full)
        if caller is not None:
            caller.check_model(route)
        request = ChatRequest(chosen, full, merged, options or ChatOptions())
        self._router.check(route, request, streamed=streamed)
        return Prepared(route, request, agent)

    def _check_size(self, messages: Sequence[ChatMessage]) -> None:
        """Refuse requests whose cost is out of proportion before anything is sent upstream."""
        if len(messages) > self._max_messages:
            raise RequestTooLarge(
                f"{len(messages)} messages; at most {self._max_messages} "
                "(setting GATEWAY_MAX_MESSAGES)",
                param="messages",
            )
        chars = sum(_text_chars(m) for m in messages)
        if chars > self._max_chars:
            raise RequestTooLarge(
                f"{chars} characters of message text; at most {self._max_chars} "
                "(setting GATEWAY_MAX_REQUEST_CHARS)",
                param="messages",
            )


def _text_chars(message: ChatMessage) -> int:
    """Characters of text a message carries: its content and its tool calls' arguments."""
    return len(message.text) + sum(len(c.arguments) for c in message.tool_calls)


def _merge_params(base: ChatParams, override: ChatParams) -> ChatParams:
    return replace(
        base,
        temperature=override.temperature if override.temperature is not None else base.temperature,
        max_tokens=override.max_tokens if override.max_tokens is not None else base.max_tokens,
        top_p=override.top_p if override.top_p is not None else base.top_p,
        stop=override.stop or base.stop,
    )
