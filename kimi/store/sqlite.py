"""The SQLite store. One connection, used from one worker thread, so the event loop never
blocks on disk and writes never interleave. WAL mode with `synchronous=NORMAL` (a commit
survives a crash of the process; conversations are written on every turn), except that token
writes are `synchronous=FULL`: a rotated refresh token that is lost kills its account, so it
is on disk before the new access token is used."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

SCHEMA = """
CREATE TABLE IF NOT EXISTS account_tokens (
    alias TEXT PRIMARY KEY,          -- full sha256 of the token first given (older stores: its
                                     -- short alias), never the token
    refresh_token TEXT,
    access_token TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    scope TEXT NOT NULL,             -- the caller: a hash of its API key, Kimi token or bearer
    id TEXT NOT NULL,                -- the client's conversation id
    account TEXT NOT NULL,           -- alias of the account that holds the upstream chat
    chat_id TEXT,
    parent_id TEXT,                  -- last assistant message id: the next turn's parent
    transcript TEXT NOT NULL,        -- JSON [[role, text], ...] of every turn so far
    digest TEXT NOT NULL,            -- sha256 of the canonical transcript
    model TEXT,
    ttl_seconds REAL NOT NULL,       -- purged (and the upstream chat deleted) after this idle time
    auto INTEGER NOT NULL DEFAULT 0, -- 1: kept only for automatic continuation of a plain request
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL NOT NULL DEFAULT 0, -- updated_at + ttl_seconds, indexed for the purge
    tools_digest TEXT,               -- the tool list the upstream chat was told about
    PRIMARY KEY (scope, id)
);
CREATE INDEX IF NOT EXISTS conversations_digest ON conversations (scope, digest);
CREATE TABLE IF NOT EXISTS uploads (
    account    TEXT NOT NULL,        -- alias of the account the file was uploaded with
    sha256     TEXT NOT NULL,        -- of the file's bytes
    file_id    TEXT NOT NULL,        -- Kimi's id for it
    created_at REAL NOT NULL,
    PRIMARY KEY (account, sha256)
);
CREATE INDEX IF NOT EXISTS uploads_created_at ON uploads (created_at);
CREATE TABLE IF NOT EXISTS responses (
    scope TEXT NOT NULL,             -- the caller, as for conversations
    id TEXT NOT NULL,                -- resp_...
    body TEXT NOT NULL,              -- JSON: the response object as the client received it
    transcript TEXT NOT NULL,        -- JSON: conversation rows up to and including this answer
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);
"""


class Store:
    def __init__(self, path: str):
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._owner_only()
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _owner_only(self) -> None:
        """The store holds refresh tokens: 0600 on the file and on its WAL and shared-memory
        files, also when an older version (or a copy) left them readable by others."""
        for path in (self.path, self.path + "-wal", self.path + "-shm"):
            try:
                os.chmod(path, 0o600)
            except FileNotFoundError:
                pass

    def _migrate(self) -> None:
        """Columns added since the table was first created (stores from earlier versions)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(conversations)")}
        if "auto" not in have:
            self._db.execute("ALTER TABLE conversations ADD COLUMN auto INTEGER NOT NULL DEFAULT 0")
        if "tools_digest" not in have:
            self._db.execute("ALTER TABLE conversations ADD COLUMN tools_digest TEXT")
        if "expires_at" not in have:
            self._db.execute("ALTER TABLE conversations ADD COLUMN expires_at REAL NOT NULL DEFAULT 0")
        # Rows without an expiry: just migrated, a migration cut short, or written by an older
        # version after a downgrade. Cheap on every start (the column is indexed).
        self._db.execute("UPDATE conversations SET expires_at = updated_at + ttl_seconds "
                         "WHERE expires_at = 0")
        # The purge looks rows up by expiry; the index on updated_at it used to scan is gone.
        self._db.execute("CREATE INDEX IF NOT EXISTS conversations_expiry ON conversations (expires_at)")
        self._db.execute("DROP INDEX IF EXISTS conversations_updated")

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def execute(self, sql: str, params=()) -> int:
        def run():
            return self._db.execute(sql, params).rowcount
        return await self._run(run)

    async def fetchall(self, sql: str, params=()) -> list[tuple]:
        def run():
            return self._db.execute(sql, params).fetchall()
        return await self._run(run)

    async def fetchone(self, sql: str, params=()) -> tuple | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    # --- account tokens -------------------------------------------------------------------

    async def load_tokens(self, alias: str) -> tuple[str | None, str | None] | None:
        return await self.fetchone(
            "SELECT refresh_token, access_token FROM account_tokens WHERE alias = ?", (alias,))

    async def save_tokens(self, alias: str, refresh_token: str | None, access_token: str | None) -> None:
        def run():
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute(
                    "INSERT INTO account_tokens (alias, refresh_token, access_token, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (alias) DO UPDATE SET "
                    "refresh_token = excluded.refresh_token, access_token = excluded.access_token, "
                    "updated_at = excluded.updated_at",
                    (alias, refresh_token, access_token, time.time()))
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
        await self._run(run)
