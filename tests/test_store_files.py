"""The store file holds refresh tokens: only its owner may read it or its WAL files."""

import os
import stat

from kimi.store.sqlite import Store


async def test_existing_store_files_are_made_owner_only(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    store = Store(path)
    await store.open()
    await store.save_tokens("k", "rt", "at")
    files = [path, path + "-wal", path + "-shm"]
    for name in files:                  # as an older version (or a copy) left them
        os.chmod(name, 0o644)
    await store.close()
    for name in files[1:]:              # a clean close removes them: put them back as found
        if not os.path.exists(name):
            open(name, "wb").close()
            os.chmod(name, 0o644)
    store = Store(path)
    await store.open()
    try:
        for name in files:
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    finally:
        await store.close()
