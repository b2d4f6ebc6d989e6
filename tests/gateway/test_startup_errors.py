"""Every start-up misconfiguration is one line naming the setting, exit status 2
(the real ``chat-gateway`` command, run as a subprocess)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.gateway.test_cli import COMMAND, clean_env, free_port, serving


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "serve", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *names: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0]
    return lines[0]


def test_a_port_in_use_is_one_line_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line_exit_2(_serve("--port", str(port)), "port", str(port), "GATEWAY_PORT")
    assert "in use" in line


def test_aliases_that_are_not_json_name_the_variable() -> None:
    result = _serve(GATEWAY_ALIASES="fast=demo/echo")
    _one_line_exit_2(result, "aliases", "GATEWAY_ALIASES", "JSON")


def test_a_default_model_that_resolves_nowhere_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('default_model = "nope-model"\n')
    line = _one_line_exit_2(_serve("--config", str(config)), "default_model", "nope-model")
    assert "unknown model" in line


def test_an_alias_to_an_unconfigured_provider_is_refused() -> None:
    result = _serve(GATEWAY_ALIASES='{"smart": "anthropic/claude-sonnet-4"}')
    line = _one_line_exit_2(result, "aliases.smart", "anthropic")
    assert "not configured" in line


def test_an_agent_model_that_resolves_nowhere_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[agents.coder]\nmodel = "gpt-4o"\n')
    _one_line_exit_2(_serve("--config", str(config)), "agents.coder.model", "openai")


def test_an_agents_demo_model_is_what_is_checked_with_no_keys(tmp_path: Path) -> None:
    # Checked is the model the agent will run on: its demo_model while offline (and
    # by the provider's own list: demo has no model "nope").
    config = tmp_path / "gateway.toml"
    config.write_text('[agents.coder]\nmodel = "gpt-4o"\ndemo_model = "demo/nope"\n')
    _one_line_exit_2(_serve("--config", str(config)), "agents.coder.demo_model", "nope")


def test_a_bad_value_is_one_line() -> None:
    _one_line_exit_2(_serve(GATEWAY_PORT="not-a-port"), "port")


def test_an_unknown_toml_key_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('defualt_model = "demo/echo"\n')
    _one_line_exit_2(_serve("--config", str(config)), "defualt_model")


@pytest.mark.parametrize(
    ("variable", "guess"),
    [
        ("GATEWAY_DEFUALT_MODEL", "GATEWAY_DEFAULT_MODEL"),
        ("GATEWAY_DEFAULT_AGENT", "GATEWAY_WS_DEFAULT_AGENT"),  # renamed
    ],
)
def test_an_unknown_gateway_variable_is_warned_about(variable: str, guess: str) -> None:
    # The warning comes before anything else; a taken port then stops the start cheaply.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _serve("--port", str(taken.getsockname()[1]), **{variable: "x"})
    warning = result.stderr.splitlines()[0]
    assert warning.startswith("chat-gateway: warning: unknown environment variable " + variable)
    assert guess in warning


@pytest.mark.anyio
async def test_the_start_up_line_lists_providers_default_model_and_config_source(
    tmp_path: Path,
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('default_model = "demo/lorem"\n')
    port = free_port()
    async with serving(port, GATEWAY_CONFIG=str(config)) as (_, lines):
        records = [orjson.loads(line) for line in lines if line.startswith("{")]
    started = next(r for r in records if r["event"] == "gateway.listening")
    assert started["url"] == f"http://127.0.0.1:{port}"
    assert started["providers"] == ["demo"]
    assert started["default_model"] == "demo/lorem"
    assert (started["ws_default_agent"], started["http_default_agent"]) == ("assistant", None)
    assert str(config) in started["config"]
