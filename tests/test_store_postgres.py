"""The PostgreSQL store against a real server: refresh-token rotation under racing replicas,
conversations and upload dedupe through the same interfaces as the SQLite store."""

import asyncio
import time

import aiohttp
import pytest

from kimi.coord import SharedStateUnavailable
from kimi.store.conversations import Conversation
from kimi.store.admin import StoredKey
from kimi.store.postgres import (PgConsoleRepo, PgConversationRepo, PgResponseRepo, PgStore,
                                 PgTokenVault, PgUploadStore)
from kimi.store.responses import StoredResponse
from kimi.upstream.accounts import HEALTHY, Account
from kimi.upstream.auth import TokenManager


@pytest.fixture
async def stores(postgres_url):
    made = []

    async def make(**kw):
        store = PgStore(postgres_url, **kw)
        await store.open()
        made.append(store)
        return store
    yield make
    for store in made:
        await store.close()


async def test_forty_racing_refreshes_on_one_account_lose_no_token(stores, emu):
    """40 replicas (each its own pool, its own memory) refresh one account at the same moment;
    every access token is already due, so each of them really rotates. Kimi (the emulator)
    refuses a refresh token presented twice."""
    emu.state.access_ttl = 60                   # inside the 300 s margin: always due
    rt0 = emu.state.issue_refresh_token("user-race")
    async with aiohttp.ClientSession() as session:
        managers, accounts = [], []
        for _ in range(40):
            vault = PgTokenVault(await stores(pool_size=1))
            managers.append(TokenManager(auth_url=emu.url, base_url=emu.url, store=vault,
                                         session_for=lambda _a: session))
            accounts.append(Account(rt0))
        results = await asyncio.gather(*(m.refresh(a) for m, a in zip(managers, accounts)),
                                       return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert all(a.state == HEALTHY for a in accounts)
    assert emu.state.refresh_calls == 40
    live = [t for t, sub in emu.state.refresh_tokens.items() if sub == "user-race"]
    async with managers[0].store.store.pool.acquire() as c:
        row = await c.fetchrow("SELECT refresh_token, version FROM account_tokens")
    assert live == [row["refresh_token"]] and row["version"] == 40


async def test_a_replica_uses_the_pair_another_one_just_stored(stores, emu):
    emu.state.access_ttl = 3600
    rt0 = emu.state.issue_refresh_token("user-b")
    async with aiohttp.ClientSession() as session:
        a, b = Account(rt0), Account(rt0)
        ta, tb = [TokenManager(auth_url=emu.url, base_url=emu.url,
                               store=PgTokenVault(await stores()), session_for=lambda _a: session)
                  for _ in range(2)]
        await ta.restore(a)
        await tb.restore(b)                     # both running, nothing stored yet
        first = await ta.access_token(a)
        # b still holds the configured token, which a just spent: under the row lock it finds
        # a's fresh pair and takes it instead of presenting the spent one.
        second = await tb.access_token(b)
    assert first == second and emu.state.refresh_calls == 1
    assert b.refresh_token == a.refresh_token != rt0


async def test_conversations_round_trip(stores):
    repo = PgConversationRepo(await stores())
    now = time.time()
    conv = Conversation(scope="s", id="c1", account="acct", chat_id="chat", parent_id="m1",
                        transcript=[["user", "hi"], ["assistant", "hello"]], digest="d1",
                        model="kimi", ttl_seconds=60, created_at=now, updated_at=now, auto=True,
                        tools_digest="t1")
    await repo.put(conv)
    got = await repo.get("s", "c1")
    assert got == conv          # every field, the ones added since the first schema too
    assert (await repo.by_digest("s", ["x", "d1"])).id == "c1"
    assert await repo.list("s") == []                   # auto rows are not listed
    conv.auto, conv.parent_id = False, "m2"
    await repo.put(conv)
    assert [c.parent_id for c in await repo.list("s")] == ["m2"]
    assert [c.id for c in await repo.expired(time.time() + 120)] == ["c1"]
    await repo.delete("s", "c1")
    assert await repo.get("s", "c1") is None


async def test_uploads_dedupe_with_expiry(stores):
    uploads = PgUploadStore(await stores(), ttl_seconds=60)
    await uploads.remember("acct", "sha-a", "file-1")
    assert await uploads.lookup("acct", ["sha-a", "sha-b"]) == {"sha-a": "file-1"}
    assert await uploads.lookup("other", ["sha-a"]) == {}
    await uploads.forget("acct", ["sha-a"])
    assert await uploads.lookup("acct", ["sha-a"]) == {}


async def test_stored_responses_round_trip_expire_and_purge(stores):
    repo = PgResponseRepo(await stores())
    now = time.time()
    live = StoredResponse("s", "resp_1", {"id": "resp_1", "output": [{"text": "hé"}]},
                          [["user", "hi"], ["assistant", "hello"]], now, now + 60)
    old = StoredResponse("s", "resp_0", {"id": "resp_0"}, [], now - 120, now - 60)
    for r in (live, old):
        await repo.put(r)
    assert await repo.get("s", "resp_1") == live
    assert await repo.get("other", "resp_1") is None        # the caller's own
    assert await repo.get("s", "resp_0") is None            # expired: gone before the purge
    live.body["status"] = "completed"
    await repo.put(live)                                    # saved again: replaced
    assert (await repo.get("s", "resp_1")).body["status"] == "completed"
    assert await repo.purge() == 1
    assert await repo.delete("s", "resp_1") is True
    assert await repo.delete("s", "resp_1") is False
    assert await repo.get("s", "resp_1") is None


async def test_an_unreachable_postgres_is_a_clear_503(postgres_server):
    from system_tools import free_port
    store = PgStore(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=1)
    with pytest.raises(SharedStateUnavailable) as e:
        await store.open()
    assert e.value.status == 503 and e.value.code == "store_unavailable"


async def test_every_sqlite_column_has_its_postgresql_twin(stores, tmp_path):
    """A column added to the SQLite store must be added to kimi/store/postgres.py too."""
    from kimi.store.admin import ConsoleRepo
    from kimi.store.sqlite import Store
    sqlite = Store(str(tmp_path / "s.sqlite3"))
    await sqlite.open()
    await ConsoleRepo(sqlite).create_schema()
    pg = await stores()
    try:
        for table in ("account_tokens", "conversations", "uploads", "responses",
                      "console_accounts", "api_keys"):
            lite = {row[1] for row in await sqlite.fetchall(f"PRAGMA table_info({table})")}
            rows = await pg.run("fetch", "SELECT column_name FROM information_schema.columns "
                                "WHERE table_name = $1", table)
            assert lite <= {r["column_name"] for r in rows}, table
    finally:
        await sqlite.close()


async def test_a_token_rotated_while_postgres_fails_is_kept_and_stored_later(
        stores, emu, postgres_server):
    """Kimi spends the old refresh token the moment it answers; if the store fails right then,
    the new token is kept in memory, presented next time, and stored once the store is back."""
    emu.state.access_ttl = 60                   # always due: every call really rotates
    rt0 = emu.state.issue_refresh_token("user-p")
    vault = PgTokenVault(await stores())
    async with aiohttp.ClientSession() as session:
        tokens = TokenManager(auth_url=emu.url, base_url=emu.url, store=vault,
                              session_for=lambda _a: session)
        account = Account(rt0)
        real = tokens._exchange

        async def exchange_then_outage(acct, rt):
            pair = await real(acct, rt)
            await asyncio.to_thread(postgres_server.stop)
            return pair
        tokens._exchange = exchange_then_outage
        first = await tokens.refresh(account)
        tokens._exchange = real
        await asyncio.to_thread(postgres_server.start)
        second = await tokens.refresh(account)
    assert first and second and account.state == HEALTHY
    live = [t for t, sub in emu.state.refresh_tokens.items() if sub == "user-p"]
    assert live == [account.refresh_token]
    assert (await vault.load_tokens(account.key))[0] == account.refresh_token


async def test_console_changes_move_the_version_and_usage_adds_up(stores):
    """Two replicas' repos on one database: a key or account change moves the number the
    others poll; usage counts are increments, so both replicas' requests add up."""
    a, b = PgConsoleRepo(await stores()), PgConsoleRepo(await stores())
    v0 = await b.version()
    await a.add_key(StoredKey("ak_1", "team", "f" * 64, "abcd", time.time(), None))
    v1 = await b.version()
    assert v1 > v0
    await a.add_usage("ak_1", 2, 10, 20, 100.0)
    await b.add_usage("ak_1", 3, 1, 2, 50.0)
    assert await b.version() == v1          # counts are not a change to follow
    [key] = await b.keys()
    assert (key.requests, key.prompt_tokens, key.completion_tokens, key.last_used) == \
        (5, 11, 22, 100.0)
    await b.revoke_key("ak_1", 123.0)
    await a.save_account("acct-x", "tok", True)
    assert await a.version() == v1 + 2
    assert (await a.keys())[0].revoked_at == 123.0
    assert await b.accounts() == [("acct-x", "tok", True)]
    await b.delete_account("acct-x", "k" * 64)
    assert await a.accounts() == []


async def test_console_rows_left_in_the_sqlite_file_are_named_at_start(
        start_gateway, token, postgres_url, tmp_path, caplog):
    """Moving a gateway to PostgreSQL leaves what its console made in the SQLite file unread:
    the start says so (and how many), rather than dropping the keys without a word."""
    from kimi.store.admin import ConsoleRepo
    from kimi.store.sqlite import Store
    path = str(tmp_path / "old.sqlite3")
    old = Store(path)
    await old.open()
    repo = ConsoleRepo(old)
    await repo.create_schema()
    await repo.add_key(StoredKey("ak_1", "laptop", "0" * 64, "abcd", time.time(), None))
    await old.close()
    await start_gateway(kimi={"tokens": (token,)}, store={"url": postgres_url, "path": path})
    assert f"{path} holds 1 API key(s) and account(s) the operator console made" in caplog.text
