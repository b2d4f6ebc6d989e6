"""docker-compose.yml, checked without a Docker engine: parsed with PyYAML, every name
it uses is one the gateway, the Dockerfile or deploy/nginx.conf really has, and the
gateways' environment is a valid configuration. (nginx.conf itself runs for real in
tests/scaleout/test_nginx.py.)"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
import yaml

from gateway.server import GRACEFUL_SHUTDOWN_S
from gateway.settings import ENV_PREFIX, env_names, load_settings
from tests.test_dockerfile import _healthcheck_command, _runtime_env

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
GATEWAYS = sorted(name for name, service in SERVICES.items() if service.get("build"))
NGINX_CONF = (ROOT / "deploy" / "nginx.conf").read_text()
# Variables that are not the gateway's settings, and who reads them.
FOREIGN = {"FORWARDED_ALLOW_IPS": "uvicorn (trusted proxy addresses)"}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {key: str(value) for key, value in env.items()}


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match is not None, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_the_services_and_the_optional_ollama_profile() -> None:
    assert GATEWAYS == ["gateway-1", "gateway-2"]
    assert set(SERVICES) == {"redis", "gateway-1", "gateway-2", "nginx", "ollama"}
    assert SERVICES["ollama"]["profiles"] == ["ollama"]
    assert all("profiles" not in s for name, s in SERVICES.items() if name != "ollama")
    # Only nginx is published: the replicas are reached through it.
    assert [name for name, s in SERVICES.items() if "ports" in s] == ["nginx"]


def test_every_dependency_waits_for_a_health_check() -> None:
    for name, service in SERVICES.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in SERVICES[dependency], dependency
    assert set(SERVICES["nginx"]["depends_on"]) == set(GATEWAYS)
    assert all(set(SERVICES[g]["depends_on"]) == {"redis"} for g in GATEWAYS)


def test_every_gateway_variable_is_a_setting_listed_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    known = env_names()
    for name in GATEWAYS:
        for key in _environment(SERVICES[name]):
            if key in FOREIGN:
                continue
            top = key.split("__")[0]
            assert top in known, f"{name}: {key} is no setting"
            assert f"# {key}=" in example or f"# {top}__" in example, f"{key} not in .env.example"


def test_uvicorn_reads_the_foreign_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    config = uvicorn.Config(app=None)  # type: ignore[arg-type]
    assert config.forwarded_allow_ips == "*"


def test_the_gateways_environment_is_a_valid_redis_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in GATEWAYS:
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            monkeypatch.delenv(key)
        monkeypatch.chdir(tmp_path)  # no .env of the checkout
        for key, value in _image_and(name).items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.sessions_backend == "redis"
        redis = urlsplit(settings.redis_url.get_secret_value())
        assert redis.hostname in SERVICES and "redis" in SERVICES[redis.hostname]["image"]
        assert (redis.port or 6379) == 6379
        assert settings.host == "0.0.0.0"
        # nginx's upstream names this service on the port it serves.
        assert f"server {name}:{settings.port} " in NGINX_CONF


def _image_and(name: str) -> dict[str, str]:
    """What a replica's process sees: the image's ENV, then the service's environment."""
    return {**_runtime_env(), **_environment(SERVICES[name])}


def test_the_gateway_health_check_is_the_images() -> None:
    for name in GATEWAYS:
        assert SERVICES[name]["healthcheck"]["test"] == ["CMD", *_healthcheck_command()]


def test_the_stop_grace_period_covers_the_drain() -> None:
    for name in GATEWAYS:
        env = _image_and(name)
        drain = float(env.get("GATEWAY_DRAIN_TIMEOUT_S", "20"))
        grace = _seconds(SERVICES[name]["stop_grace_period"])
        assert drain + GRACEFUL_SHUTDOWN_S < grace, name
        assert SERVICES[name].get("stop_signal", "SIGTERM") == "SIGTERM"


def test_nginx_runs_the_committed_config_on_the_published_port() -> None:
    nginx = SERVICES["nginx"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    (published,) = nginx["ports"]
    _, container = published.split(":")
    assert f"listen {container};" in NGINX_CONF
    test = nginx["healthcheck"]["test"]
    url = urlsplit(test[-1])
    assert url.port == int(container)
    assert f"location = {url.path} {{" in NGINX_CONF


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes", {}))
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, source
            else:
                assert (ROOT / source).exists(), source
