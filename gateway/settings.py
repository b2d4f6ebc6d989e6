"""Configuration: environment variables (``GATEWAY_`` prefix) over an optional TOML file.

Nothing reads configuration at import time: :func:`load_settings` is called once
by the CLI (or by a test) and the resulting :class:`Settings` object is passed
down explicitly. Secrets are ``SecretStr`` so they never end up in a ``repr``,
a log line or an error message.

Precedence, highest first: explicit keyword overrides, environment variables,
the TOML file, defaults. Nested values in the environment use ``__``, e.g.
``GATEWAY_TIMEOUTS__FIRST_TOKEN_S=10``.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "GATEWAY_"
# Read by load_settings itself, not a field.
CONFIG_ENV = "GATEWAY_CONFIG"


class ConfigError(Exception):
    """Invalid configuration, with a message that names the offending fields."""


class Timeouts(BaseModel):
    model_config = {"extra": "forbid"}

    connect_s: float = Field(5.0, gt=0)
    first_token_s: float = Field(30.0, gt=0)
    # Between events, as a wall-clock deadline of the routed stream (a trickle of
    # bytes that completes no event does not reset it); also the HTTP read timeout.
    between_tokens_s: float = Field(30.0, gt=0)
    total_s: float = Field(600.0, gt=0)


class RetryPolicy(BaseModel):
    model_config = {"extra": "forbid"}

    max_attempts: int = Field(2, ge=1, le=10, description="attempts per target, first included")
    backoff_initial_s: float = Field(0.25, ge=0)
    backoff_max_s: float = Field(4.0, ge=0)
    jitter: float = Field(0.2, ge=0, le=1, description="+/- fraction of the backoff")
    max_retry_after_s: float = Field(
        10.0, ge=0, description="a longer retry-after skips to the next target"
    )


class CircuitBreakerPolicy(BaseModel):
    model_config = {"extra": "forbid"}

    enabled: bool = True
    failure_threshold: int = Field(
        5, ge=1, description="consecutive retryable failures that open a provider's circuit"
    )
    open_s: float = Field(
        10.0, gt=0, description="how long an open circuit skips the provider before a trial"
    )


class AgentConfig(BaseModel):
    model_config = {"extra": "forbid"}

    description: str = ""
    instructions: str = ""
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = None
    demo_model: str | None = Field(
        default=None,
        description="model the agent runs on instead of its model while no real provider"
        " (openai, anthropic, ollama) is configured",
    )

    def run_on(self, *, offline: bool) -> str | None:
        """The model the agent runs on (None: the gateway's default model)."""
        if offline and self.demo_model is not None:
            return self.demo_model
        return self.model


def _default_agents() -> dict[str, AgentConfig]:
    return {
        "assistant": AgentConfig(
            description="General-purpose IT service desk assistant.",
            instructions=(
                "You are a helpful assistant for an IT service desk. Answer clearly and concisely."
            ),
        ),
        "ticket-triage": AgentConfig(
            description="Summarises a ticket and proposes a category and a priority.",
            instructions=(
                "You triage IT service tickets. Reply with: a one-sentence summary; "
                "a category (one of: access, hardware, software, network, security, other); "
                "a priority (P1 critical, P2 high, P3 medium, P4 low) with a short reason."
            ),
            temperature=0.2,
            demo_model="demo/triage",
        ),
    }


class ClientKey(BaseModel):
    """One client key with its policy (``[[keys]]`` in the TOML file).

    Give the key's SHA-256 (hex) rather than the key itself, so the config file
    holds nothing a reader could use: ``printf %s "$KEY" | sha256sum``.
    """

    model_config = {"extra": "forbid"}

    name: str | None = Field(None, description="shown in logs instead of the fingerprint")
    key: SecretStr | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    expires_at: datetime | None = Field(None, description="refused from this instant on")
    revoked: bool = False
    models: list[str] = Field(
        default_factory=list,
        description="model names or patterns (fnmatch, e.g. 'demo/*') this key may use; "
        "empty = every model",
    )

    @model_validator(mode="after")
    def _one_secret(self) -> ClientKey:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of 'key' and 'sha256'")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        return self


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    # --- server ---
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_format: Literal["json", "console"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_content: bool = Field(False, description="log message content (off by default)")
    web_demo_dir: Path | None = Field(
        None, description="built web demo served at / (default: web-demo/dist of the checkout)"
    )
    address_file: Path | None = Field(
        None,
        description="once listening, `serve` writes the URL it serves here (removed on exit);"
        " `chat-gateway health` probes that URL (the image's HEALTHCHECK)",
    )

    # --- providers ---
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "anthropic_api_key")
    )
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    anthropic_default_max_tokens: int = Field(
        4096,
        ge=1,
        description="max_tokens sent to Anthropic when a request sets none (its Messages "
        "API requires one; OpenAI and Ollama have no such cap)",
    )
    ollama_base_url: str | None = None
    ollama_models: CsvList = Field(default_factory=list)
    demo_token_delay_ms: float = Field(30.0, ge=0)
    upstream_transport: Literal["gateway", "httpx2"] = Field(
        "gateway",
        description="'gateway': the gateway's own HTTP/1.1 transport, with httpx2's default "
        "transport where it cannot go (proxies); 'httpx2': always httpx2's default transport",
    )

    # --- routing ---
    default_model: str = "demo/echo"
    aliases: dict[str, str] = Field(default_factory=dict)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=_default_agents)
    # Which agent a request that names none gets, per transport. The OpenAI-compatible
    # HTTP API is a drop-in: by default it sends exactly the caller's messages.
    ws_default_agent: str | None = Field(
        "assistant",
        description="agent for a WebSocket response.create (or a UI chat) naming none;"
        " empty = none",
    )
    http_default_agent: str | None = Field(
        None,
        description="agent for a chat completion request that names none; empty = none"
        " (the default: the request's own messages go upstream unchanged)",
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)  # type: ignore[arg-type]
    retry: RetryPolicy = Field(default_factory=RetryPolicy)  # type: ignore[arg-type]
    circuit_breaker: CircuitBreakerPolicy = Field(
        default_factory=CircuitBreakerPolicy  # type: ignore[arg-type]
    )
    health_probe_ttl_s: float = Field(10.0, ge=0)
    health_probe_timeout_s: float = Field(2.0, gt=0)

    # --- access ---
    client_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="keys (or 'sha256:<hex digest>') accepted with no further policy",
    )
    keys: list[ClientKey] = Field(
        default_factory=list, description="keys with a name, expiry, revocation or model list"
    )
    allowed_origins: CsvList = Field(default_factory=list)
    admin_token: SecretStr | None = None
    metrics_token: SecretStr | None = Field(
        None, description="bearer token /metrics requires; unset = open, like /health"
    )

    # --- HTTP API request limits ---
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="largest HTTP request body, counted while reading"
    )
    max_messages: int = Field(2048, ge=1, description="most messages in one chat request")
    max_request_chars: int = Field(
        2_000_000, ge=1, description="most characters of message text in one chat request"
    )

    # --- WebSocket sessions ---
    resume_window_ms: int = Field(30_000, ge=0)
    max_message_bytes: int = Field(256 * 1024, ge=1024)
    # With uvicorn's own wait after it (server.GRACEFUL_SHUTDOWN_S) the whole stop
    # fits inside Kubernetes' default 30 s grace period (README: "Graceful drain").
    drain_timeout_s: float = Field(20.0, ge=0)
    heartbeat_interval_ms: int = Field(25_000, gt=0)
    idle_timeout_ms: int = Field(60_000, gt=0)
    max_concurrent_responses: int = Field(4, ge=1)
    # Costly messages (response.create, response.resume, session.update) spend this
    # bucket; response.cancel and ping never do: a Stop frees work.
    messages_per_second: float = Field(20.0, gt=0)
    message_burst: int = Field(40, ge=1)
    max_rate_violations: int = Field(20, ge=1)
    # Every message, cheap or costly, counts against this much higher ceiling; going
    # over it closes the socket (1008) and cancels its running responses.
    flood_messages_per_second: float = Field(200.0, gt=0)
    flood_message_burst: int = Field(200, ge=1)
    max_sockets: int = Field(10_000, ge=1)
    max_sockets_per_key: int = Field(
        100, ge=1, description="per client key (on every instance together, with Redis sessions)"
    )
    # Per client key, over all its sockets (and instances, with sessions_backend=redis):
    # the same costly messages as messages_per_second spend it. Unset: no per-key rate.
    key_messages_per_second: float | None = Field(
        None,
        gt=0,
        description="costly messages per second per client key, over all its sockets"
        " (shared by every instance with sessions_backend=redis); unset = no per-key rate",
    )
    key_message_burst: int = Field(40, ge=1, description="saved-up allowance of that rate")
    outbox_max_bytes: int = Field(1024 * 1024, ge=1024)
    # A socket over outbox_max_bytes for this long is closed 4013 (slow consumer); one
    # that drains below it in time is not, however large the burst (docs/protocol.md).
    outbox_drain_timeout_ms: int = Field(
        10_000, ge=0, description="how long a socket's outbox may stay over outbox_max_bytes"
    )
    replay_max_events: int = Field(10_000, ge=1)
    replay_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)

    # --- sessions shared across instances ---
    sessions_backend: Literal["memory", "redis"] = Field(
        "memory", description="where WebSocket sessions' responses live: this process or Redis"
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis for sessions_backend=redis (may hold a password: kept secret)",
    )
    redis_key_prefix: str = Field(
        "gw:", pattern=r"^[^\n]*$", description="prefix of every Redis key the gateway uses"
    )
    redis_owner_lease_ms: int = Field(
        3000, ge=300, description="a dead instance's responses end owner_lost after this"
    )
    redis_stream_max_events: int = Field(
        10_000, ge=10, description="events kept per response stream (oldest trimmed)"
    )

    @field_validator("agents", mode="after")
    @classmethod
    def _keep_builtin_agents(cls, value: dict[str, AgentConfig]) -> dict[str, AgentConfig]:
        # Configured agents add to (or redefine) the shipped ones rather than replace them.
        return {**_default_agents(), **value}

    @field_validator("ws_default_agent", "http_default_agent", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _default_agents_exist(self) -> Settings:
        for name in ("ws_default_agent", "http_default_agent"):
            agent = getattr(self, name)
            if agent is not None and agent not in self.agents:
                raise ValueError(f"{name}: '{agent}' is not one of the configured agents")
        return self

    @field_validator("ollama_models", "allowed_origins", "client_keys", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    # --- derived facts -----------------------------------------------------------

    @property
    def openai_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None

    @property
    def anthropic_configured(self) -> bool:
        return self.anthropic_api_key is not None or self.anthropic_base_url is not None

    @property
    def ollama_configured(self) -> bool:
        return self.ollama_base_url is not None

    @property
    def real_provider_configured(self) -> bool:
        return self.openai_configured or self.anthropic_configured or self.ollama_configured

    @property
    def auth_enabled(self) -> bool:
        return bool(self.client_keys or self.keys)

    # Set by load_settings: the TOML file read, if any (for the start-up log).
    _config_file: Path | None = PrivateAttr(None)

    @property
    def config_source(self) -> str:
        file = f"{self._config_file} + " if self._config_file is not None else ""
        return f"{file}{ENV_PREFIX}* environment + defaults"


def env_names() -> frozenset[str]:
    """Every environment variable a setting is read from (top level; ``__`` nests below)."""
    names = {CONFIG_ENV}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str) and c.isupper())
        else:
            names.add(ENV_PREFIX + name.upper())
    return frozenset(names)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from overrides, environment, an optional TOML file and defaults.

    ``config_file`` defaults to ``$GATEWAY_CONFIG`` when set. Raises
    :class:`ConfigError` naming every invalid field.
    """
    raw_path = config_file or os.environ.get(CONFIG_ENV)
    path = Path(raw_path) if raw_path else None
    if path is not None:
        _check_readable_toml(path)

    class _FromFile(Settings):
        # A per-call subclass carries the file path without any global state.
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    try:
        settings = _FromFile(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:
        raise ConfigError(_describe_source_error(exc)) from None
    settings._config_file = path
    return settings


def _check_readable_toml(path: Path) -> None:
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _describe_source_error(exc: SettingsError) -> str:
    # pydantic-settings says 'error parsing value for field "aliases" from source ...'
    # when a structured value in the environment is not JSON.
    field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "settings"
    env = ENV_PREFIX + field.upper()
    return (
        f"invalid configuration: {field}: {env} must be JSON"
        f' (e.g. {env}=\'{{"fast": "demo/echo"}}\'): {exc.__cause__ or exc}'
    )


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "settings"
        problems.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(problems)
