"""API keys created in the console: shown once, stored as SHA-256, matched in memory.

The match runs on every API request and authentication is synchronous, so the active keys'
hashes live in a dict, updated on create and revoke (live without a restart), and rebuilt
from the store when another replica changed it (`load`, see kimi.admin.follow). A key is 32
random bytes, so a plain SHA-256 is enough: there is nothing to guess that a slow hash would
protect."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

from ..errors import InvalidRequest, NotFound
from ..store.admin import ConsoleRepo, StoredKey

PREFIX = "sk-kg-"
MAX_NAME = 64


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("'name' must be a non-empty string", param="name")
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise InvalidRequest(f"'name' must be at most {MAX_NAME} printable characters",
                             param="name")
    return name


class ApiKeys:
    def __init__(self, repo: ConsoleRepo, config_keys: tuple[str, ...]):
        self.repo = repo
        self.config_count = len(config_keys)
        self._keys: dict[str, StoredKey] = {}       # every stored key by id, revoked too
        self._active: dict[str, str] = {}           # secret sha256 -> key id
        # A reload never lands between a change's store write and its dict update (it
        # would bring back a key just revoked here, or drop one just made).
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """The keys as stored, counters included (which every replica adds to)."""
        async with self._lock:
            keys = {key.id: key for key in await self.repo.keys()}
            self._keys = keys
            self._active = {k.secret_sha256: k.id for k in keys.values() if k.revoked_at is None}

    @property
    def active(self) -> bool:
        """Keys are required once the console has made one, even after all are revoked:
        revoking the last key must not open the gateway to anyone."""
        return bool(self._keys)

    def match(self, presented: str) -> str | None:
        """The id of the active key presented, or None. Comparing hashes leaks nothing
        usable about a secret through timing."""
        return self._active.get(_digest(presented))

    def name_of(self, key_id: str | None) -> str:
        if key_id is None:
            return ""
        key = self._keys.get(key_id)
        if key is not None:
            return key.name
        return f"config key {int(key_id) + 1}" if key_id.isdigit() else key_id

    async def create(self, name) -> tuple[StoredKey, str]:
        name = check_name(name)
        secret = PREFIX + secrets.token_urlsafe(32)
        key = StoredKey(id="ak_" + secrets.token_hex(6), name=name,
                        secret_sha256=_digest(secret), hint=secret[-4:],
                        created_at=time.time(), revoked_at=None)
        async with self._lock:
            await self.repo.add_key(key)
            self._keys[key.id] = key
            self._active[key.secret_sha256] = key.id
        return key, secret

    async def revoke(self, key_id: str) -> StoredKey:
        async with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                raise NotFound(f"no API key '{key_id}' (config-file keys are removed in the "
                               "config file)", code="api_key_not_found")
            if key.revoked_at is None:
                self._active.pop(key.secret_sha256, None)   # refused from this moment on
                key.revoked_at = time.time()
                await self.repo.revoke_key(key.id, key.revoked_at)
        return key

    async def add_usage(self, totals: dict[str, list]) -> None:
        """Fold per-key request and token counts (from the traffic record) into the store."""
        for key_id, (requests, prompt, completion, last) in totals.items():
            key = self._keys.get(key_id)
            if key is None:
                continue
            key.requests += requests
            key.prompt_tokens += prompt
            key.completion_tokens += completion
            key.last_used = max(key.last_used or 0.0, last)
            await self.repo.add_usage(key_id, requests, prompt, completion, last)

    def stored(self) -> list[StoredKey]:
        return list(self._keys.values())
