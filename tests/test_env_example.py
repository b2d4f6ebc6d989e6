""".env.example lists every setting (each environment variable a setting reads) with its
default, so it cannot silently fall behind gateway/settings.py."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, SecretStr

from gateway.settings import ENV_PREFIX, Settings, env_names

EXAMPLE = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
LISTED = dict(re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", EXAMPLE, re.M))


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):  # a default, never a real secret
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def test_every_environment_variable_is_listed() -> None:
    def listed(name: str) -> bool:  # a nested model is listed field by field
        return name in LISTED or any(key.startswith(f"{name}__") for key in LISTED)

    missing = sorted(name for name in env_names() if not listed(name))
    assert not missing, f"add to .env.example: {missing}"


def test_every_scalar_and_nested_default_is_shown() -> None:
    wrong = {}
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        env = ENV_PREFIX + name.upper()
        if isinstance(default, BaseModel):
            for sub in type(default).model_fields:
                key = f"{env}__{sub.upper()}"
                if LISTED.get(key) != _shown(getattr(default, sub)):
                    wrong[key] = LISTED.get(key)
        elif (
            field.validation_alias is None
            and not isinstance(default, dict)
            and LISTED.get(env) != _shown(default)
        ):
            wrong[env] = LISTED.get(env)
    assert not wrong, f"defaults in .env.example differ from settings.py: {wrong}"
