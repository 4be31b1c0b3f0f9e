"""What the operator console keeps: accounts added in the browser, the flags set on config-file
accounts, and the API keys it created (their SHA-256 only; the secret is shown once)."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS console_accounts (
        alias TEXT PRIMARY KEY,          -- acct-<hash> of the token, as everywhere else
        token TEXT,                      -- the pasted token; NULL for a config-file account
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,             -- ak_<hex>: the caller id, in conversation scopes too
        name TEXT NOT NULL,
        secret_sha256 TEXT NOT NULL UNIQUE,
        hint TEXT NOT NULL,              -- the last characters, to tell keys apart
        created_at REAL NOT NULL,
        revoked_at REAL,
        requests INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        last_used REAL
    )""",
)


@dataclass(slots=True)
class StoredKey:
    id: str
    name: str
    secret_sha256: str
    hint: str
    created_at: float
    revoked_at: float | None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_used: float | None = None


class ConsoleRepo:
    def __init__(self, store):
        self.store = store

    async def create_schema(self) -> None:
        for statement in SCHEMA:
            await self.store.execute(statement)

    # --- accounts -------------------------------------------------------------------------

    async def accounts(self) -> list[tuple[str, str | None, bool]]:
        rows = await self.store.fetchall(
            "SELECT alias, token, disabled FROM console_accounts ORDER BY created_at")
        return [(alias, token, bool(disabled)) for alias, token, disabled in rows]

    async def save_account(self, alias: str, token: str | None, disabled: bool) -> None:
        await self.store.execute(
            "INSERT INTO console_accounts (alias, token, disabled, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (alias) DO UPDATE SET disabled = excluded.disabled",
            (alias, token, int(disabled), time.time()))

    async def delete_account(self, alias: str, key: str) -> None:
        """The account's row and its stored tokens (kept by `key`; older stores: by alias)."""
        await self.store.execute("DELETE FROM console_accounts WHERE alias = ?", (alias,))
        await self.store.execute("DELETE FROM account_tokens WHERE alias IN (?, ?)", (alias, key))

    # --- API keys -------------------------------------------------------------------------

    async def keys(self) -> list[StoredKey]:
        rows = await self.store.fetchall(
            "SELECT id, name, secret_sha256, hint, created_at, revoked_at, requests, "
            "prompt_tokens, completion_tokens, last_used FROM api_keys ORDER BY created_at")
        return [StoredKey(*row) for row in rows]

    async def add_key(self, key: StoredKey) -> None:
        await self.store.execute(
            "INSERT INTO api_keys (id, name, secret_sha256, hint, created_at) VALUES (?, ?, ?, ?, ?)",
            (key.id, key.name, key.secret_sha256, key.hint, key.created_at))

    async def revoke_key(self, key_id: str, when: float) -> None:
        await self.store.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (when, key_id))

    async def add_usage(self, key_id: str, requests: int, prompt: int, completion: int,
                        last_used: float) -> None:
        await self.store.execute(
            "UPDATE api_keys SET requests = requests + ?, prompt_tokens = prompt_tokens + ?, "
            "completion_tokens = completion_tokens + ?, last_used = max(coalesce(last_used, 0), ?) "
            "WHERE id = ?", (requests, prompt, completion, last_used, key_id))

    # --- conversations --------------------------------------------------------------------

    async def conversation_counts(self) -> list[tuple[str, int, int]]:
        """(scope, conversations, of which kept only for automatic continuation)."""
        return await self.store.fetchall(
            "SELECT scope, COUNT(*), SUM(auto) FROM conversations GROUP BY scope ORDER BY scope")

    async def conversations(self, scope: str, limit: int = 200) -> list[tuple]:
        """Ids and times only: a transcript is prompt text and never leaves the store here."""
        return await self.store.fetchall(
            "SELECT id, model, auto, created_at, updated_at, expires_at FROM conversations "
            "WHERE scope = ? ORDER BY updated_at DESC LIMIT ?", (scope, limit))


def rows_left_in(path: str) -> int:
    """The console rows (API keys, accounts) an SQLite file holds; 0 when it has none or is
    not there. For a gateway moved to PostgreSQL, which does not read that file."""
    if not os.path.exists(path):
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return sum(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                       for table in ("api_keys", "console_accounts"))
    except sqlite3.Error:
        return 0
