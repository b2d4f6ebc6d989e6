"""The lock files cover pyproject.toml: every declared requirement is pinned, with hashes,
at a version that satisfies it, and the runtime lock agrees with the dev lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = PIN.match(block)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{name}: {match.group(1)} is pinned without a hash"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _declared(*, dev: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    if dev:
        names += project["optional-dependencies"]["dev"]
    return [Requirement(name) for name in names]


def _assert_covers(lock: str, requirements: list[Requirement]) -> None:
    pins = _pins(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {requirement}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, pyproject.toml wants {requirement}: run `make lock`"
        )


def test_dev_lock_covers_runtime_and_dev_requirements() -> None:
    _assert_covers("requirements-dev.lock", _declared(dev=True))


def test_runtime_lock_covers_runtime_requirements() -> None:
    _assert_covers("requirements.lock", _declared(dev=False))


def test_runtime_lock_pins_the_versions_the_dev_lock_tests() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert runtime, "requirements.lock pins nothing"
    assert {name: dev.get(name) for name in runtime} == runtime
