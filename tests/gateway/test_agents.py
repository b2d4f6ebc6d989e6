"""Orchestrator.prepare: agent -> model -> route, instructions and parameter merging."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.agents import Orchestrator
from gateway.errors import AgentNotFound, ModelNotFound, ValidationFailed
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatMessage, ChatParams
from gateway.router import Router, Target
from gateway.settings import load_settings

USER = (ChatMessage("user", "my laptop will not boot"),)


def _orchestrator(**overrides: Any) -> Orchestrator:
    config: dict[str, Any] = {
        "openai_api_key": "sk-test",
        "default_model": "demo/echo",
        "ws_default_agent": None,
        "aliases": {"fast": "gpt-4o-mini"},
        "agents": {
            "coder": {
                "description": "Writes code.",
                "instructions": "Answer with code only.",
                "model": "demo/lorem",
                "temperature": 0.1,
                "max_tokens": 100,
            },
            "plain": {"description": "No preset model or instructions."},
        },
    }
    settings = load_settings(**{**config, **overrides})
    return Orchestrator(settings, Router(settings, ProviderRegistry(settings)))


@pytest.mark.parametrize(
    ("model", "agent", "expected_name", "expected_target"),
    [
        ("gpt-4o", "coder", "gpt-4o", Target("openai", "gpt-4o")),  # explicit model wins
        (None, "coder", "demo/lorem", Target("demo", "lorem")),  # then the agent's model
        (None, "plain", "demo/echo", Target("demo", "echo")),  # then the default model
        (None, None, "demo/echo", Target("demo", "echo")),
        ("fast", None, "fast", Target("openai", "gpt-4o-mini")),  # aliases resolve
    ],
)
def test_model_precedence(
    model: str | None, agent: str | None, expected_name: str, expected_target: Target
) -> None:
    prepared = _orchestrator().prepare(transport="ws", messages=USER, model=model, agent=agent)
    assert prepared.request.model == expected_name
    assert prepared.route.requested_model == expected_name
    assert prepared.route.targets[0] == expected_target
    assert prepared.agent == agent


def test_instructions_become_the_first_system_message() -> None:
    history = (ChatMessage("system", "Be nice."), *USER)
    prepared = _orchestrator().prepare(transport="ws", messages=history, agent="coder")
    assert prepared.request.messages == (
        ChatMessage("system", "Answer with code only."),
        *history,
    )


def test_no_instructions_no_system_message() -> None:
    assert (
        _orchestrator().prepare(transport="ws", messages=USER, agent="plain").request.messages
        == USER
    )
    assert _orchestrator().prepare(transport="ws", messages=USER).request.messages == USER


def test_explicit_params_override_the_agents() -> None:
    prepared = _orchestrator().prepare(
        transport="ws",
        messages=USER,
        agent="coder",
        params=ChatParams(temperature=0.9, stop=("END",)),
    )
    assert prepared.request.params == ChatParams(temperature=0.9, max_tokens=100, stop=("END",))


def test_agent_params_apply_when_none_given() -> None:
    prepared = _orchestrator().prepare(transport="ws", messages=USER, agent="coder")
    assert prepared.request.params == ChatParams(temperature=0.1, max_tokens=100)


def test_params_pass_through_without_agent() -> None:
    params = ChatParams(temperature=0.5, top_p=0.9, max_tokens=7)
    assert (
        _orchestrator().prepare(transport="ws", messages=USER, params=params).request.params
        == params
    )


def test_unknown_agent() -> None:
    with pytest.raises(AgentNotFound) as caught:
        _orchestrator().prepare(transport="ws", messages=USER, agent="nobody")
    assert caught.value.param == "agent"
    assert caught.value.http_status == 404


def test_empty_messages() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _orchestrator().prepare(transport="ws", messages=[], agent="coder")
    assert caught.value.param == "messages"


def test_unresolvable_model_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound):
        _orchestrator(openai_api_key=None).prepare(transport="ws", messages=USER, model="gpt-4o")


def test_default_agents_are_loaded() -> None:
    settings = load_settings()
    orchestrator = Orchestrator(settings, Router(settings, ProviderRegistry(settings)))
    assert {"assistant", "ticket-triage"} <= set(orchestrator.agents)
    triage = orchestrator.agent("ticket-triage")
    assert triage.params.temperature == 0.2
    assert "triage" in triage.instructions


def test_the_socket_default_agent_applies_when_none_is_named() -> None:
    orchestrator = _orchestrator(ws_default_agent="coder")
    prepared = orchestrator.prepare(transport="ws", messages=USER)
    assert prepared.agent == "coder"
    assert prepared.request.messages[0] == ChatMessage("system", "Answer with code only.")
    assert prepared.route.targets[0] == Target("demo", "lorem")
    # A named agent still wins over the default.
    assert (
        orchestrator.prepare(transport="ws", messages=USER, agent="plain").request.messages == USER
    )


def test_the_http_api_gets_no_agent_unless_configured() -> None:
    # The shipped defaults: the socket gets 'assistant', the OpenAI-compatible API none.
    settings = load_settings()
    assert (settings.ws_default_agent, settings.http_default_agent) == ("assistant", None)
    orchestrator = Orchestrator(settings, Router(settings, ProviderRegistry(settings)))
    http = orchestrator.prepare(transport="http", messages=USER)
    assert (http.agent, http.request.messages) == (None, USER)
    ws = orchestrator.prepare(transport="ws", messages=USER)
    assert ws.agent == "assistant"
    assert ws.request.messages[0].role == "system"
    # Configured, the HTTP default applies to HTTP only.
    configured = _orchestrator(http_default_agent="coder")
    assert configured.prepare(transport="http", messages=USER).agent == "coder"
    assert configured.prepare(transport="ws", messages=USER).agent is None


@pytest.mark.parametrize("setting", ["ws_default_agent", "http_default_agent"])
def test_default_agents_must_exist(setting: str) -> None:
    from gateway.settings import ConfigError

    with pytest.raises(ConfigError, match=setting):
        load_settings(**{setting: "nope"})
    assert getattr(load_settings(**{setting: ""}), setting) is None


def test_ticket_triage_uses_the_demo_triage_model_while_only_demo_runs() -> None:
    settings = load_settings()
    orchestrator = Orchestrator(settings, Router(settings, ProviderRegistry(settings)))
    prepared = orchestrator.prepare(transport="http", messages=USER, agent="ticket-triage")
    assert prepared.route.targets[0] == Target("demo", "triage")
    # With a real provider configured, the agent follows the default model again.
    real = load_settings(openai_api_key="sk-test", default_model="gpt-4o-mini")
    orchestrator = Orchestrator(real, Router(real, ProviderRegistry(real)))
    prepared = orchestrator.prepare(transport="http", messages=USER, agent="ticket-triage")
    assert prepared.route.targets[0] == Target("openai", "gpt-4o-mini")


def test_an_agent_with_a_model_runs_on_its_demo_model_while_only_demo_runs() -> None:
    # The README's own agent example, with no keys: its demo_model, not a start-up
    # failure or a request to a provider that is not there.
    agent = {"model": "claude-haiku-4-5", "demo_model": "demo/triage"}
    offline = load_settings(agents={"triager": agent})
    orchestrator = Orchestrator(offline, Router(offline, ProviderRegistry(offline)))
    prepared = orchestrator.prepare(transport="http", messages=USER, agent="triager")
    assert prepared.route.targets[0] == Target("demo", "triage")
    real = load_settings(agents={"triager": agent}, anthropic_api_key="sk-ant-test")
    orchestrator = Orchestrator(real, Router(real, ProviderRegistry(real)))
    prepared = orchestrator.prepare(transport="http", messages=USER, agent="triager")
    assert prepared.route.targets[0] == Target("anthropic", "claude-haiku-4-5")
