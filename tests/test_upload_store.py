"""The per-account upload memory: lookup, TTL, forget, and sharing the file with other tables."""

import sqlite3
import time

from kimi.store.uploads import UploadStore


async def test_remember_lookup_forget(tmp_path):
    store = UploadStore(str(tmp_path / "s.sqlite3"), ttl_seconds=3600)
    await store.open()
    try:
        await store.remember("user-a", "h1", "f1")
        await store.remember("user-a", "h2", "f2")
        await store.remember("user-b", "h1", "g1")
        assert await store.lookup("user-a", ["h1", "h2", "h3"]) == {"h1": "f1", "h2": "f2"}
        assert await store.lookup("user-b", ["h1", "h2"]) == {"h1": "g1"}
        await store.forget("user-a", ["h1"])
        assert await store.lookup("user-a", ["h1", "h2"]) == {"h2": "f2"}
        assert await store.lookup("user-a", []) == {}
    finally:
        await store.close()


async def test_entries_expire_after_the_ttl_and_are_purged(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    store = UploadStore(path, ttl_seconds=60)
    await store.open()
    await store.remember("user-a", "fresh", "f1")
    await store.remember("user-a", "old", "f2")
    store._db.execute("UPDATE uploads SET created_at = ? WHERE sha256 = 'old'", (time.time() - 61,))
    assert await store.lookup("user-a", ["fresh", "old"]) == {"fresh": "f1"}
    await store.close()
    with sqlite3.connect(path) as db:
        assert len(db.execute("SELECT sha256 FROM uploads").fetchall()) == 2
    reopened = UploadStore(path, ttl_seconds=60)
    await reopened.open()       # opening purges expired rows (and so does every write)
    await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT sha256 FROM uploads").fetchall() == [("fresh",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
