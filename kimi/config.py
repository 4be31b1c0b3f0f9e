"""Configuration: TOML file, then environment overrides, into frozen dataclasses.

Every problem (unreadable file, unknown key, wrong type) raises ConfigError with one line that
names the key, so startup stops with a message a user can act on.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import json
import os
import re
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
    body_memory_mb: int = 1024
    log_level: str = "info"
    keepalive_seconds: float = 15.0
    shutdown_grace_seconds: float = 30.0
    idle_connection_seconds: float = 20.0
    token_checks_per_minute: int = 10
    allow_open_access: bool = False
    cors_origins: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class KimiConfig:
    base_url: str = "https://www.kimi.com"
    auth_url: str = "https://auth.kimi.com"
    tokens: tuple[str, ...] = ()
    connect_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 90.0
    idle_connection_seconds: float = 60.0
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
    url: str = ""                       # "postgresql://...": shared store for several replicas


@dataclass(frozen=True)
class CoordinationConfig:
    redis_url: str = ""                 # "redis://...": leases and locks across replicas
    lease_ttl_seconds: float = 10.0


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
    coordination: CoordinationConfig = field(default_factory=CoordinationConfig)
    source: str = "<defaults>"


SECTIONS = {"server": ServerConfig, "kimi": KimiConfig, "pool": PoolConfig, "store": StoreConfig,
            "files": FilesConfig, "tools": ToolsConfig, "admin": AdminConfig,
            "anthropic": AnthropicConfig, "coordination": CoordinationConfig}

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
    "ALLOW_OPEN_ACCESS": ("server", "allow_open_access"),
    "CORS_ORIGINS": ("server", "cors_origins"),
    "ADMIN_KEY": ("admin", "key"),
    "STORE_URL": ("store", "url"),
    "REDIS_URL": ("coordination", "redis_url"),
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
    config = Config(**built, source=path or "<defaults>")
    check_shapes(config)
    return config


def _from_env(var: str, value: str, cls, key: str):
    kind = _field_types(cls)[key]
    if kind is tuple:
        return [v.strip() for v in value.split(",") if v.strip()]
    if kind is bool:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"environment variable {var} must be true or false, got {value!r}")
        return value.lower() in ("true", "1")
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
    if key == "url" and value and not _url_of(value, ("postgresql", "postgres")):
        raise ConfigError(f"{name} must be a postgresql:// URL with a numeric port if any "
                          f"(its value is not shown: it may hold a password)")
    if key == "redis_url" and value and not _url_of(value, ("redis", "rediss", "unix")):
        raise ConfigError(f"{name} must be a redis:// URL with a numeric port if any "
                          f"(its value is not shown: it may hold a password)")
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


def exposure_problem(config: Config, host: str) -> str | None:
    """An open proxy for the owner's Kimi accounts is refused unless the config asks for it:
    server tokens, no API keys, and an address other machines can reach."""
    server = config.server
    if not config.kimi.tokens or server.api_keys or server.allow_open_access or is_loopback(host):
        return None
    return (f"listening on {host} with [kimi] tokens and no [server] api_keys lets anyone who "
            "reaches this address use your Kimi accounts; set [server] api_keys, listen on "
            "127.0.0.1, or set [server] allow_open_access = true if this is intended")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False        # a name other than localhost may resolve to anything


_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?")


def check_shapes(config: Config) -> None:
    """Values whose type is right but whose shape is not: a URL without a scheme, a host list
    entry that is neither a name nor an address, a token that is not a Kimi JWT. Each would
    pass the start and fail every request; here each is one line naming the key."""
    for key in ("base_url", "auth_url"):
        _check_url(f"[kimi] {key}", getattr(config.kimi, key))
    for i, entry in enumerate(config.files.allow_hosts):
        _check_host_entry(f"[files] allow_hosts[{i}]", entry)
    for i, token in enumerate(config.kimi.tokens):
        _check_token(f"[kimi] tokens[{i}]", token)
    for i, origin in enumerate(config.server.cors_origins):
        if origin != "*":
            _check_url(f"[server] cors_origins[{i}]", origin, origin=True)


def _url_of(url: str, schemes: tuple[str, ...]) -> bool:
    """`url` parses, with one of `schemes` and a valid port if it names one."""
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        return parts.scheme in schemes and (parts.port is None or parts.port > 0)
    except ValueError:
        return False


def _check_url(name: str, url: str, origin: bool = False) -> None:
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and \
            (parts.port is None or parts.port > 0)
        ok = ok and not (origin and (parts.path or parts.query or parts.fragment))
    except ValueError:
        ok = False
    if not ok:
        example = '"*" or an origin such as https://chat.example.com' if origin else \
            "an http(s) URL such as https://www.kimi.com"
        raise ConfigError(f"{name} must be {example}, got {url!r}")


def _check_host_entry(name: str, entry: str) -> None:
    try:
        ipaddress.ip_network(entry.strip("[]"), strict=False)
        return
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(entry):
        raise ConfigError(f"{name} must be a host name (files.example.com), an address or a "
                          f"network (10.0.0.0/8), got {entry!r}")


def _check_token(name: str, token: str) -> None:
    """A Kimi token is a JWT: three base64url parts, the second a JSON object of claims.
    The token itself is never printed."""
    parts = token.split(".")
    try:
        ok = len(parts) == 3 and token.startswith("eyJ") and isinstance(
            json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))), dict)
    except (ValueError, binascii.Error):
        ok = False
    if not ok:
        hint = " (remove the 'Bearer ' prefix)" if token.lower().startswith("bearer ") else ""
        raise ConfigError(f"{name} is not a Kimi token: expected a JWT starting with 'eyJ' "
                          f"(the refresh_token from kimi.com's Local Storage){hint}")
