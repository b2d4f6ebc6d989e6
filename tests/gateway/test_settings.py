"""Settings: environment over TOML over defaults, list parsing, secrets kept out of reprs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.settings import ConfigError, load_settings

TOML = """
port = 9001
host = "0.0.0.0"
default_model = "demo/lorem"
client_keys = ["file-key-0123456789"]

[aliases]
fast = "demo/echo"

[timeouts]
first_token_s = 12.5
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_") or name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str = TOML) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.client_keys == []
    assert not settings.auth_enabled


def test_toml_values_are_used(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path))
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)
    assert settings.aliases == {"fast": "demo/echo"}
    assert settings.timeouts.first_token_s == 12.5
    assert [k.get_secret_value() for k in settings.client_keys] == ["file-key-0123456789"]


def test_environment_beats_toml_and_overrides_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9002")
    monkeypatch.setenv("GATEWAY_TIMEOUTS__FIRST_TOKEN_S", "3")
    monkeypatch.setenv("GATEWAY_CONFIG", str(write(tmp_path)))
    from_env = load_settings()
    assert from_env.port == 9002
    assert from_env.host == "0.0.0.0"  # still from the file
    assert from_env.timeouts.first_token_s == 3
    assert load_settings(port=9003).port == 9003


def test_comma_separated_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CLIENT_KEYS", "key-one-0123456789, key-two-0123456789,")
    monkeypatch.setenv("GATEWAY_ALLOWED_ORIGINS", "https://a.example,https://b.example")
    settings = load_settings()
    assert [k.get_secret_value() for k in settings.client_keys] == [
        "key-one-0123456789",
        "key-two-0123456789",
    ]
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.auth_enabled


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-openai")
    settings = load_settings(
        client_keys="client-very-secret",
        admin_token="admin-very-secret",
        anthropic_api_key="sk-ant-very-secret",
    )
    text = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in ("sk-very-secret-openai", "client-very-secret", "admin-very-secret", "sk-ant"):
        assert secret not in text
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-very-secret-openai"


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "port" in str(caught.value)
    assert "abc" not in str(caught.value)  # inputs are not echoed: they may be secrets


def test_unknown_keys_and_bad_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prot"):
        load_settings(write(tmp_path, "prot = 1\n"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "port = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
