"""The per-account upload memory: lookup, TTL, forget, in the gateway's SQLite store."""

import sqlite3
import time

from kimi.store.sqlite import Store
from kimi.store.uploads import UploadStore


async def opened(path: str, ttl: float) -> tuple[Store, UploadStore]:
    store = Store(path)
    await store.open()
    uploads = UploadStore(store, ttl_seconds=ttl)
    await uploads.purge()
    return store, uploads


async def test_remember_lookup_forget(tmp_path):
    store, uploads = await opened(str(tmp_path / "s.sqlite3"), 3600)
    try:
        await uploads.remember("user-a", "h1", "f1")
        await uploads.remember("user-a", "h2", "f2")
        await uploads.remember("user-a", "h3", "f3")
        await uploads.remember("user-b", "h1", "g1")
        assert await uploads.lookup("user-a", ["h1", "h2", "h3", "h4"]) == \
            {"h1": "f1", "h2": "f2", "h3": "f3"}
        assert await uploads.lookup("user-b", ["h1", "h2"]) == {"h1": "g1"}
        await uploads.forget("user-a", ["h1", "h3"])
        await uploads.forget("user-a", [])
        assert await uploads.lookup("user-a", ["h1", "h2", "h3"]) == {"h2": "f2"}
        assert await uploads.lookup("user-b", ["h1"]) == {"h1": "g1"}
        assert await uploads.lookup("user-a", []) == {}
    finally:
        await store.close()


async def test_entries_expire_after_the_ttl_and_are_purged(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    store, uploads = await opened(path, 60)
    await uploads.remember("user-a", "fresh", "f1")
    await uploads.remember("user-a", "old", "f2")
    await store.execute("UPDATE uploads SET created_at = ? WHERE sha256 = 'old'",
                        (time.time() - 61,))
    assert await uploads.lookup("user-a", ["fresh", "old"]) == {"fresh": "f1"}
    await store.close()
    with sqlite3.connect(path) as db:
        assert len(db.execute("SELECT sha256 FROM uploads").fetchall()) == 2
    store, uploads = await opened(path, 60)     # the gateway purges on start
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT sha256 FROM uploads").fetchall() == [("fresh",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
