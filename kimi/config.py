"""Configuration: TOML file, then environment overrides, into frozen dataclasses.

Every problem (unreadable file, unknown key, wrong type) raises ConfigError with one line that
names the key, so startup stops with a message a user can act on.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    max_body_mb: int = 140
    log_level: str = "info"
    keepalive_seconds: float = 15.0
    shutdown_grace_seconds: float = 30.0


@dataclass(frozen=True)
class KimiConfig:
    base_url: str = "https://www.kimi.com"
    auth_url: str = "https://auth.kimi.com"
    tokens: tuple[str, ...] = ()
    connect_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 90.0
    connection_idle_seconds: float = 60.0
    delete_chats: bool = True
    think_tags: bool = False
    models_refresh_seconds: float = 3600.0


@dataclass(frozen=True)
class PoolConfig:
    max_streams_per_account: int = 1
    queue_timeout_seconds: float = 30.0
    refresh_margin_seconds: float = 300.0


@dataclass(frozen=True)
class StoreConfig:
    path: str = "kimi-gateway.sqlite3"
    conversation_ttl_days: float = 7.0
    auto_continue_minutes: float = 30.0
    overflow: str = "error"


@dataclass(frozen=True)
class FilesConfig:
    max_mb: int = 100
    allow_hosts: tuple[str, ...] = ()
    download_timeout_seconds: float = 60.0
    upload_timeout_seconds: float = 120.0
    parse_timeout_seconds: float = 60.0
    parallel_uploads: int = 4
    dedupe_ttl_hours: float = 24.0


@dataclass(frozen=True)
class ToolsConfig:
    retries: int = 1


@dataclass(frozen=True)
class AdminConfig:
    key: str = ""                   # empty: no console, /admin answers 404
    traffic_records: int = 10000    # requests kept in memory for the traffic list
    session_hours: float = 12.0     # a console login lasts this long


@dataclass(frozen=True)
class AnthropicConfig:
    # The Kimi model each Claude family name (claude-*-opus/sonnet/haiku-*) stands for.
    opus: str = "kimi-thinking"
    sonnet: str = "kimi-thinking"
    haiku: str = "kimi"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    kimi: KimiConfig = field(default_factory=KimiConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    anthropic: AnthropicConfig = field(default_factory=AnthropicConfig)
    source: str = "<defaults>"


SECTIONS = {"server": ServerConfig, "kimi": KimiConfig, "pool": PoolConfig, "store": StoreConfig,
            "files": FilesConfig, "tools": ToolsConfig, "admin": AdminConfig,
            "anthropic": AnthropicConfig}

# Environment variable -> (section, key). Lists are comma-separated.
ENV_OVERRIDES = {
    "HOST": ("server", "host"),
    "PORT": ("server", "port"),
    "API_KEYS": ("server", "api_keys"),
    "LOG_LEVEL": ("server", "log_level"),
    "KIMI_TOKENS": ("kimi", "tokens"),
    "KIMI_BASE_URL": ("kimi", "base_url"),
    "KIMI_AUTH_URL": ("kimi", "auth_url"),
    "STORE_PATH": ("store", "path"),
    "ADMIN_KEY": ("admin", "key"),
}


def load_config(path: str | None, env: dict[str, str] | None = None) -> Config:
    raw: dict = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    sections = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section [{name}] (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = dict(value)
    for var, (section, key) in ENV_OVERRIDES.items():
        value = (env if env is not None else os.environ).get(var)
        if value is not None and value != "":
            sections.setdefault(section, {})[key] = _from_env(var, value, SECTIONS[section], key)
    built = {name: _build(name, cls, sections.get(name, {})) for name, cls in SECTIONS.items()}
    return Config(**built, source=path or "<defaults>")


def _from_env(var: str, value: str, cls, key: str):
    kind = _field_types(cls)[key]
    if kind is tuple:
        return [v.strip() for v in value.split(",") if v.strip()]
    if kind is int:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"environment variable {var} must be an integer, got {value!r}") from None
    return value


def _field_types(cls) -> dict[str, type]:
    types = {"str": str, "int": int, "float": float, "bool": bool}
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = tuple if f.type.startswith("tuple") else types[f.type]
    return out


def _build(section: str, cls, values: dict):
    types = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"unknown config key [{section}] {key} (known: {', '.join(types)})")
        kwargs[key] = _check(f"[{section}] {key}", types[key], value)
        _check_value(f"[{section}] {key}", key, kwargs[key])
    return cls(**kwargs)


CHOICES = {"overflow": ("error", "rotate"), "log_level": ("debug", "info", "warning", "error")}
MIN_ADMIN_KEY = 16
MAY_BE_ZERO = {"auto_continue_minutes", "refresh_margin_seconds", "dedupe_ttl_hours", "retries"}


def _check_value(name: str, key: str, value) -> None:
    """Values a type check lets through but that make no sense (a 0 s keep-alive would
    flood the client, a mistyped mode would silently be the default)."""
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{name} must be one of {', '.join(CHOICES[key])}, got {value!r}")
    if key == "key" and value and len(value) < MIN_ADMIN_KEY:
        raise ConfigError(f"{name} must be at least {MIN_ADMIN_KEY} characters (it opens the "
                          "operator console), or empty to turn the console off")
    if key == "port" and not 1 <= value <= 65535:
        raise ConfigError(f"{name} must be between 1 and 65535, got {value}")
    if key == "retries" and not 0 <= value <= 2:
        raise ConfigError(f"{name} must be 0, 1 or 2, got {value}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0 or (value == 0 and key not in MAY_BE_ZERO):
            raise ConfigError(f"{name} must be {'0 or more' if key in MAY_BE_ZERO else 'more than 0'}, "
                              f"got {value}")


def _check(name: str, kind: type, value):
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings")
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{name} must be {kind.__name__}, got {type(value).__name__}")
    return value
