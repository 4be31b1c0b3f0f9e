"""What each Kimi account already uploaded: content sha256 -> Kimi file id, with a TTL.

A table of the gateway's SQLite store (`Store`, whose one worker thread runs every statement,
so the event loop never waits on the disk).
"""

from __future__ import annotations

import time

from .sqlite import Store


class UploadStore:
    def __init__(self, store: Store, ttl_seconds: float):
        self.store = store
        self.ttl = ttl_seconds

    async def purge(self) -> None:
        """Drop entries past the TTL (on start; every write purges too)."""
        await self.store.execute("DELETE FROM uploads WHERE created_at < ?",
                                 (time.time() - self.ttl,))

    async def lookup(self, account: str, digests: list[str]) -> dict[str, str]:
        """The still-fresh file ids among `digests` for this account."""
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        rows = await self.store.fetchall(
            f"SELECT sha256, file_id FROM uploads WHERE account = ? AND created_at >= ? "
            f"AND sha256 IN ({marks})", (account, time.time() - self.ttl, *digests))
        return dict(rows)

    async def remember(self, account: str, digest: str, file_id: str) -> None:
        await self.store.execute("INSERT OR REPLACE INTO uploads (account, sha256, file_id, "
                                 "created_at) VALUES (?, ?, ?, ?)",
                                 (account, digest, file_id, time.time()))
        # Purging on write keeps a long-running gateway's table at one TTL's worth.
        await self.purge()

    async def forget(self, account: str, digests: list[str]) -> None:
        if digests:
            marks = ",".join("?" * len(digests))
            await self.store.execute(
                f"DELETE FROM uploads WHERE account = ? AND sha256 IN ({marks})",
                (account, *digests))
