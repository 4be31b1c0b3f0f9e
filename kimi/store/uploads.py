"""What each Kimi account already uploaded: content sha256 -> Kimi file id, with a TTL.

Its own SQLite connection (WAL, so other tables in the same file can be written meanwhile)
and its own table. Every call is one short statement, run in a worker thread so the event
loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    account    TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    file_id    TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account, sha256)
);
CREATE INDEX IF NOT EXISTS uploads_created_at ON uploads (created_at);
"""


class UploadStore:
    def __init__(self, path: str, ttl_seconds: float):
        self.path = path
        self.ttl = ttl_seconds
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()   # one connection, used from worker threads in turn

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        db.execute("DELETE FROM uploads WHERE created_at < ?", (time.time() - self.ttl,))
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(self._run, db.close)

    async def lookup(self, account: str, digests: list[str]) -> dict[str, str]:
        """The still-fresh file ids among `digests` for this account."""
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        rows = await self._query(
            f"SELECT sha256, file_id FROM uploads WHERE account = ? AND created_at >= ? "
            f"AND sha256 IN ({marks})", (account, time.time() - self.ttl, *digests))
        return dict(rows)

    async def remember(self, account: str, digest: str, file_id: str) -> None:
        now = time.time()

        def write():
            self._db.execute("INSERT OR REPLACE INTO uploads (account, sha256, file_id, "
                             "created_at) VALUES (?, ?, ?, ?)", (account, digest, file_id, now))
            # Purging on write keeps a long-running gateway's table at one TTL's worth.
            self._db.execute("DELETE FROM uploads WHERE created_at < ?", (now - self.ttl,))

        await asyncio.to_thread(self._run, write)

    async def forget(self, account: str, digests: list[str]) -> None:
        for digest in digests:
            await self._query("DELETE FROM uploads WHERE account = ? AND sha256 = ?",
                              (account, digest))

    async def _query(self, sql: str, args: tuple) -> list[tuple]:
        return await asyncio.to_thread(self._run, lambda: self._db.execute(sql, args).fetchall())

    def _run(self, fn):
        with self._lock:
            return fn()
