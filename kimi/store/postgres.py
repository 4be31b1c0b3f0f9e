"""Durable state in PostgreSQL, for several replicas: the same tables as the SQLite store
(rotated tokens, conversations, upload dedupe, stored Responses, the operator console's
accounts and API keys), and the same repository interfaces.

Refresh-token rotation is serialized by a row lock: `PgTokenVault.rotate` holds
`SELECT ... FOR UPDATE` on the account's row while it exchanges the token with Kimi, so one
replica at a time presents the newest token, and the rotated pair is committed before anyone
uses it. The `version` column counts rotations. A connection that holds a row lock never asks
the pool for a second one (that deadlocks a full pool).
"""

from __future__ import annotations

import logging
import time

import asyncpg
import orjson

from ..coord import SharedStateUnavailable
from .admin import StoredKey
from .conversations import COLUMNS, Conversation
from .responses import COLUMNS as RESPONSE_COLUMNS
from .responses import StoredResponse

log = logging.getLogger("kimi.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS account_tokens (
    alias TEXT PRIMARY KEY,            -- hash of the token the user configured, never the token
    refresh_token TEXT,
    access_token TEXT,
    version BIGINT NOT NULL DEFAULT 0, -- rotations so far
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    scope TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL, chat_id TEXT, parent_id TEXT,
    transcript TEXT NOT NULL, digest TEXT NOT NULL, model TEXT,
    ttl_seconds DOUBLE PRECISION NOT NULL, auto BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, id)
);
-- Columns added since the table was first created (ADD COLUMN IF NOT EXISTS: idempotent).
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS tools_digest TEXT;
CREATE INDEX IF NOT EXISTS conversations_digest ON conversations (scope, digest);
CREATE INDEX IF NOT EXISTS conversations_expiry ON conversations (expires_at);
CREATE TABLE IF NOT EXISTS uploads (
    account TEXT NOT NULL, sha256 TEXT NOT NULL, file_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, sha256)
);
CREATE INDEX IF NOT EXISTS uploads_created_at ON uploads (created_at);
CREATE TABLE IF NOT EXISTS responses (
    scope TEXT NOT NULL, id TEXT NOT NULL,
    body TEXT NOT NULL, transcript TEXT NOT NULL,       -- JSON, as in the SQLite table
    created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);
CREATE TABLE IF NOT EXISTS console_accounts (
    alias TEXT PRIMARY KEY, token TEXT, disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION,
    requests BIGINT NOT NULL DEFAULT 0, prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0, last_used DOUBLE PRECISION
);
-- Bumped with every change to the two console tables above (not by usage counts): each
-- replica reads it every second and reloads its keys and accounts when it moved.
CREATE TABLE IF NOT EXISTS console_version (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), version BIGINT NOT NULL
);
INSERT INTO console_version (one, version) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
"""
SCHEMA_LOCK = 0x6B696D69      # replicas starting together create the tables one at a time

DOWN = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.CannotConnectNowError)


def unavailable(e: BaseException) -> SharedStateUnavailable:
    return SharedStateUnavailable("the shared store (PostgreSQL) cannot be reached "
                                  f"({type(e).__name__}); try again shortly",
                                  code="store_unavailable")


class PgStore:
    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 5.0):
        self.url, self.pool_size, self.timeout = url, pool_size, timeout
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            # A statement may wait for a row lock held across a token refresh (up to 15 s).
            self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size,
                                                  timeout=self.timeout, command_timeout=30)
            async with self.pool.acquire() as c, c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                await c.execute(SCHEMA)
        except DOWN as e:
            raise unavailable(e) from None

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def ping(self) -> bool:
        try:
            await self.run("fetchval", "SELECT 1")
            return True
        except SharedStateUnavailable:
            return False

    async def run(self, method: str, sql: str, *args):
        """One statement on a pooled connection; `method` is an asyncpg Connection method
        (execute, fetch, fetchrow, fetchval)."""
        try:
            async with self.pool.acquire(timeout=self.timeout) as c:
                return await getattr(c, method)(sql, *args)
        except DOWN as e:
            raise unavailable(e) from None

    async def run_all(self, statements) -> None:
        """(sql, *args) statements in one transaction."""
        try:
            async with self.pool.acquire(timeout=self.timeout) as c, c.transaction():
                for sql, *args in statements:
                    await c.execute(sql, *args)
        except DOWN as e:
            raise unavailable(e) from None


class PgTokenVault:
    """Rotated tokens, one writer per account across replicas (see the module docstring)."""

    def __init__(self, store: PgStore):
        self.store = store
        # Rotated by Kimi but not stored (PostgreSQL failed at that moment): the one working
        # refresh token, presented next time instead of the spent one in the row.
        self._unsaved: dict[str, str] = {}

    async def load_tokens(self, alias: str):
        row = await self.store.run("fetchrow", "SELECT refresh_token, access_token FROM "
                                   "account_tokens WHERE alias = $1", alias)
        return (row["refresh_token"], row["access_token"]) if row else None

    async def save_tokens(self, alias: str, refresh_token, access_token) -> None:
        await self.store.run(
            "execute", "INSERT INTO account_tokens (alias, refresh_token, access_token, "
            "updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (alias) DO UPDATE SET "
            "refresh_token = $2, access_token = $3, version = account_tokens.version + 1, "
            "updated_at = $4", alias, refresh_token, access_token, time.time())

    async def rotate(self, alias: str, known_rt: str, stale_access, exchange, fresh):
        """Under the account's row lock: if another replica stored a live access token since
        ours went stale, use its pair; otherwise exchange the newest refresh token and commit
        the new pair before returning it. None when Kimi refused the token."""
        rotated = None
        try:
            async with self.store.pool.acquire(timeout=self.store.timeout) as c, c.transaction():
                await c.execute("INSERT INTO account_tokens (alias, refresh_token, updated_at) "
                                "VALUES ($1, $2, $3) ON CONFLICT (alias) DO NOTHING",
                                alias, known_rt, time.time())
                row = await c.fetchrow("SELECT refresh_token, access_token FROM account_tokens "
                                       "WHERE alias = $1 FOR UPDATE", alias)
                rt = self._unsaved.get(alias) or row["refresh_token"] or known_rt
                access = row["access_token"]
                if alias not in self._unsaved and access and access != stale_access \
                        and fresh(access):
                    return access, rt
                pair = await exchange(rt)
                if pair is None:
                    return None
                rotated = pair[0], pair[1] or rt
                await c.execute("UPDATE account_tokens SET refresh_token = $2, access_token = $3, "
                                "version = version + 1, updated_at = $4 WHERE alias = $1",
                                alias, rotated[1], rotated[0], time.time())
            self._unsaved.pop(alias, None)
            return rotated
        except DOWN as e:
            if rotated is None:
                raise unavailable(e) from None
            # Kimi has already spent the old token: keep the new one rather than lose it.
            self._unsaved[alias] = rotated[1]
            log.error("could not store the rotated refresh token of account %s... (%s); kept "
                      "in memory until the store is back", alias[:10], type(e).__name__)
            return rotated


NAMES = [name.strip() for name in COLUMNS.split(",")]
# Every column of the SQLite repo's list, so a column added there needs only its schema line.
UPSERT = (f"INSERT INTO conversations ({COLUMNS}, expires_at) VALUES "
          f"({', '.join(f'${i}' for i in range(1, len(NAMES) + 2))}) "
          "ON CONFLICT (scope, id) DO UPDATE SET "
          + ", ".join(f"{name} = EXCLUDED.{name}" for name in NAMES[2:] + ["expires_at"]))


def _conversation(row) -> Conversation:
    values = list(row)
    values[5] = orjson.loads(values[5])
    return Conversation(*values)


class PgConversationRepo:
    """`kimi.store.conversations.ConversationRepo` on PostgreSQL."""

    def __init__(self, store: PgStore):
        self.store = store

    async def get(self, scope: str, cid: str) -> Conversation | None:
        row = await self.store.run("fetchrow", f"SELECT {COLUMNS} FROM conversations "
                                   "WHERE scope = $1 AND id = $2", scope, cid)
        return _conversation(row) if row else None

    async def by_digest(self, scope: str, digests: list[str]) -> Conversation | None:
        if not digests:
            return None
        row = await self.store.run("fetchrow", f"SELECT {COLUMNS} FROM conversations WHERE "
                                   "scope = $1 AND digest = ANY($2::text[]) "
                                   "ORDER BY updated_at DESC LIMIT 1", scope, digests)
        return _conversation(row) if row else None

    async def put(self, c: Conversation) -> None:
        c.updated_at = time.time()
        values = [getattr(c, name) for name in NAMES]
        values[NAMES.index("transcript")] = orjson.dumps(c.transcript).decode()
        values[NAMES.index("ttl_seconds")] = float(c.ttl_seconds)
        values[NAMES.index("auto")] = bool(c.auto)
        await self.store.run("execute", UPSERT, *values, c.updated_at + c.ttl_seconds)

    async def list(self, scope: str) -> list[Conversation]:
        rows = await self.store.run("fetch", f"SELECT {COLUMNS} FROM conversations WHERE "
                                    "scope = $1 AND NOT auto ORDER BY updated_at DESC", scope)
        return [_conversation(r) for r in rows]

    async def delete(self, scope: str, cid: str) -> None:
        await self.store.run("execute", "DELETE FROM conversations WHERE scope = $1 AND id = $2",
                             scope, cid)

    async def expired(self, now: float | None = None) -> list[Conversation]:
        rows = await self.store.run("fetch", f"SELECT {COLUMNS} FROM conversations "
                                    "WHERE expires_at < $1", now or time.time())
        return [_conversation(r) for r in rows]


class PgUploadStore:
    """`kimi.store.uploads.UploadStore` on PostgreSQL: content sha256 -> Kimi file id."""

    def __init__(self, store: PgStore, ttl_seconds: float):
        self.store, self.ttl = store, ttl_seconds

    async def purge(self) -> None:
        await self.store.run("execute", "DELETE FROM uploads WHERE created_at < $1",
                             time.time() - self.ttl)

    async def lookup(self, account: str, digests: list[str]) -> dict[str, str]:
        if not digests:
            return {}
        rows = await self.store.run("fetch", "SELECT sha256, file_id FROM uploads WHERE "
                                    "account = $1 AND created_at >= $2 AND sha256 = ANY($3::text[])",
                                    account, time.time() - self.ttl, digests)
        return {r["sha256"]: r["file_id"] for r in rows}

    async def remember(self, account: str, digest: str, file_id: str) -> None:
        await self.store.run("execute", "INSERT INTO uploads (account, sha256, file_id, created_at) "
                             "VALUES ($1, $2, $3, $4) ON CONFLICT (account, sha256) DO UPDATE "
                             "SET file_id = $3, created_at = $4",
                             account, digest, file_id, time.time())
        await self.purge()      # as the SQLite table: one TTL's worth, whoever writes

    async def forget(self, account: str, digests: list[str]) -> None:
        if digests:
            await self.store.run("execute", "DELETE FROM uploads WHERE account = $1 AND "
                                 "sha256 = ANY($2::text[])", account, digests)


class PgResponseRepo:
    """`kimi.store.responses.ResponseRepo` on PostgreSQL."""

    def __init__(self, store: PgStore):
        self.store = store

    async def get(self, scope: str, rid: str) -> StoredResponse | None:
        row = await self.store.run("fetchrow", f"SELECT {RESPONSE_COLUMNS} FROM responses "
                                   "WHERE scope = $1 AND id = $2 AND expires_at >= $3",
                                   scope, rid, time.time())
        if row is None:
            return None
        return StoredResponse.of_row(row)

    async def put(self, r: StoredResponse) -> None:
        await self.store.run(
            "execute", f"INSERT INTO responses ({RESPONSE_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6) "
            "ON CONFLICT (scope, id) DO UPDATE SET body = $3, transcript = $4, "
            "created_at = $5, expires_at = $6",
            r.scope, r.id, orjson.dumps(r.body).decode(), orjson.dumps(r.transcript).decode(),
            float(r.created_at), float(r.expires_at))

    async def delete(self, scope: str, rid: str) -> bool:
        status = await self.store.run("execute", "DELETE FROM responses WHERE scope = $1 "
                                      "AND id = $2", scope, rid)
        return status != "DELETE 0"

    async def purge(self, now: float | None = None) -> int:
        status = await self.store.run("execute", "DELETE FROM responses WHERE expires_at < $1",
                                      now or time.time())
        return int(status.split()[-1])


BUMP = ("UPDATE console_version SET version = version + 1",)


class PgConsoleRepo:
    """`kimi.store.admin.ConsoleRepo` on PostgreSQL. Each change bumps `console_version` in
    its own transaction, so a replica that sees the number move reloads what it holds."""

    def __init__(self, store: PgStore):
        self.store = store

    async def create_schema(self) -> None:
        pass        # with the other tables, when the store opens

    async def version(self) -> int:
        return await self.store.run("fetchval", "SELECT version FROM console_version")

    async def accounts(self) -> list[tuple[str, str | None, bool]]:
        rows = await self.store.run("fetch", "SELECT alias, token, disabled FROM "
                                    "console_accounts ORDER BY created_at")
        return [(r["alias"], r["token"], r["disabled"]) for r in rows]

    async def save_account(self, alias: str, token: str | None, disabled: bool) -> None:
        await self.store.run_all([(
            "INSERT INTO console_accounts (alias, token, disabled, created_at) VALUES "
            "($1, $2, $3, $4) ON CONFLICT (alias) DO UPDATE SET disabled = EXCLUDED.disabled",
            alias, token, disabled, time.time()), BUMP])

    async def delete_account(self, alias: str, key: str) -> None:
        await self.store.run_all([
            ("DELETE FROM console_accounts WHERE alias = $1", alias),
            ("DELETE FROM account_tokens WHERE alias = $1 OR alias = $2", alias, key), BUMP])

    async def keys(self) -> list[StoredKey]:
        rows = await self.store.run(
            "fetch", "SELECT id, name, secret_sha256, hint, created_at, revoked_at, requests, "
            "prompt_tokens, completion_tokens, last_used FROM api_keys ORDER BY created_at")
        return [StoredKey(*r) for r in rows]

    async def add_key(self, key: StoredKey) -> None:
        await self.store.run_all([(
            "INSERT INTO api_keys (id, name, secret_sha256, hint, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            key.id, key.name, key.secret_sha256, key.hint, key.created_at), BUMP])

    async def revoke_key(self, key_id: str, when: float) -> None:
        await self.store.run_all([("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND "
                                   "revoked_at IS NULL", key_id, when), BUMP])

    async def add_usage(self, key_id: str, requests: int, prompt: int, completion: int,
                        last_used: float) -> None:
        """Increments: each replica adds what it served."""
        await self.store.run(
            "execute", "UPDATE api_keys SET requests = requests + $2, prompt_tokens = "
            "prompt_tokens + $3, completion_tokens = completion_tokens + $4, last_used = "
            "GREATEST(COALESCE(last_used, 0), $5) WHERE id = $1",
            key_id, requests, prompt, completion, last_used)

    async def conversation_counts(self) -> list[tuple[str, int, int]]:
        return await self.store.run(
            "fetch", "SELECT scope, COUNT(*), COUNT(*) FILTER (WHERE auto) FROM conversations "
            "GROUP BY scope ORDER BY scope")

    async def conversations(self, scope: str, limit: int = 200) -> list[tuple]:
        return await self.store.run(
            "fetch", "SELECT id, model, auto, created_at, updated_at, expires_at FROM "
            "conversations WHERE scope = $1 ORDER BY updated_at DESC LIMIT $2", scope, limit)
