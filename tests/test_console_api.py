"""The operator console's JSON API and login, against a real gateway and the emulator: off
without [admin] key, never cached, no secret in any answer, changes live and persisted."""

import asyncio
import hashlib
import re

import aiohttp
import openai
import pytest

from kimi.admin.console import CONSOLE, TRAFFIC
from kimi.config import ConfigError, load_config
from kimi.emulator import Fault, Reply, mint_access_token
from kimi.upstream.tokens import alias_for

ADMIN = "admin-key-for-tests-0123456789"
HELLO = [{"role": "user", "content": "console test prompt \u00e9"}]


@pytest.fixture
async def cgw(start_gateway, token):
    """A gateway with the console on and one config-file account."""
    return await start_gateway(kimi={"tokens": (token,)}, admin={"key": ADMIN})


class Admin:
    """The console API as a script uses it: the admin key as a Bearer."""

    def __init__(self, gw, session):
        self.gw, self.s = gw, session
        self.texts: list[str] = []

    async def call(self, method, path, body=None, status=200):
        async with self.s.request(method, self.gw.url + "/admin/api/" + path, json=body,
                                  headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            text = await resp.text()
            assert resp.status == status, text
            assert resp.headers["Cache-Control"] == "no-store"
            self.texts.append(text)
            return await resp.json()


@pytest.fixture
async def admin(cgw):
    async with aiohttp.ClientSession() as s:
        yield Admin(cgw, s)


async def get(url, **kw):
    async with aiohttp.ClientSession() as s:
        async with s.get(url, allow_redirects=False, **kw) as resp:
            return resp.status, resp.headers, await resp.text()


async def test_console_is_off_without_an_admin_key(gw):
    for path in ("/admin", "/admin/api/accounts", "/admin/console.js"):
        status, _, _ = await get(gw.url + path, headers={"Authorization": "Bearer x"})
        assert status == 404


async def test_nothing_is_served_without_the_key_and_nothing_is_cached(cgw):
    status, headers, page = await get(cgw.url + "/admin")
    assert status == 200 and 'action="/admin/login"' in page
    assert "console.js" not in page, "the login page carries no console"
    assert headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for path in ("/admin/api/accounts", "/admin/api/keys", "/admin/api/traffic",
                 "/admin/console.js"):
        for auth in ({}, {"Authorization": "Bearer wrong"}):
            status, headers, body = await get(cgw.url + path, headers=auth)
            assert status == 401, path
            assert headers["Cache-Control"] == "no-store"
            assert "acct-" not in body


async def test_login_sets_a_strict_session_cookie_and_changes_need_the_console_header(cgw):
    # unsafe: keep cookies from an IP-address host (127.0.0.1), as a browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(cgw.url + "/admin/login", data={"key": "nope"}) as resp:
            assert resp.status == 401 and "not the admin key" in await resp.text()
        async with s.post(cgw.url + "/admin/login", data={"key": "k" * 10_000}) as resp:
            assert resp.status == 413
        async with s.post(cgw.url + "/admin/login", data={"key": ADMIN},
                          allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/admin"
            cookie = resp.headers["Set-Cookie"]
        assert ADMIN not in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
        async with s.get(cgw.url + "/admin") as resp:
            assert 'src="/admin/console.js"' in await resp.text()
        async with s.get(cgw.url + "/admin/api/accounts") as resp:
            assert resp.status == 200
        async with s.post(cgw.url + "/admin/api/keys", json={"name": "x"}) as resp:
            assert resp.status == 403       # a cross-site form cannot add the header
        async with s.post(cgw.url + "/admin/api/keys", json={"name": "x"},
                          headers={"X-Console": "1"}) as resp:
            assert resp.status == 201
        async with s.post(cgw.url + "/admin/logout", allow_redirects=False) as resp:
            assert resp.status == 303
        async with s.get(cgw.url + "/admin/api/accounts") as resp:
            assert resp.status == 401


async def test_accounts_add_validate_disable_enable_remove(cgw, admin, emu, token):
    listing = (await admin.call("GET", "accounts"))["data"]
    assert [(a["source"], a["state"]) for a in listing] == [("config", "healthy")]
    bad = await admin.call("POST", "accounts", {"token": "not-a-kimi-token"}, status=400)
    assert "Kimi did not accept the token" in bad["error"]["message"]
    assert len((await admin.call("GET", "accounts"))["data"]) == 1, "not saved"
    second = mint_access_token("user-2")
    added = await admin.call("POST", "accounts", {"token": second}, status=201)
    await admin.call("POST", "accounts", {"token": second}, status=409)
    rows = {a["id"]: a for a in (await admin.call("GET", "accounts"))["data"]}
    new = rows[added["id"]]
    assert (new["source"], new["state"], new["token_kind"]) == ("console", "healthy", "access")
    assert new["access_expires_at"] > 0 and new["next_refresh"] is None

    config_id = next(i for i, a in rows.items() if a["source"] == "config")
    await admin.call("POST", f"accounts/{config_id}/disable", {})
    assert [a.alias for a in cgw.service.pool.accounts] == [added["id"]]
    r = await cgw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content
    assert emu.state.chat_requests[-1] is not None
    await admin.call("DELETE", f"accounts/{config_id}", status=409)
    await admin.call("POST", f"accounts/{config_id}/enable", {})
    await admin.call("DELETE", f"accounts/{added['id']}")
    assert [a["id"] for a in (await admin.call("GET", "accounts"))["data"]] == [config_id]
    assert not any(token in t or second in t for t in admin.texts)


async def test_cooling_and_dead_accounts_say_why_and_for_how_long(cgw, admin, emu):
    emu.state.replies.append(Reply(fault=Fault("http", status=429, code="resource_exhausted",
                                               retry_after=120)))
    with pytest.raises(openai.RateLimitError):
        await cgw.client().chat.completions.create(model="kimi", messages=HELLO)
    [row] = (await admin.call("GET", "accounts"))["data"]
    assert row["state"] == "cooling" and "rate limited" in row["reason"]
    assert 100 < row["cooling_left"] <= 120
    second = (await admin.call("POST", "accounts", {"token": mint_access_token("user-2")},
                               status=201))["id"]
    emu.state.replies.append(Reply(fault=Fault("http", status=401)))
    with pytest.raises(openai.APIStatusError):
        await cgw.client().chat.completions.create(model="kimi", messages=HELLO)
    rows = {a["id"]: a for a in (await admin.call("GET", "accounts"))["data"]}
    assert rows[second]["state"] == "dead" and "rejected the token" in rows[second]["reason"]
    assert rows[second]["cooling_left"] is None


async def test_streams_in_flight_show_while_an_answer_runs(cgw, admin, emu):
    emu.state.replies.append(Reply(pause=1.5))
    ask = asyncio.ensure_future(cgw.client().chat.completions.create(model="kimi",
                                                                     messages=HELLO))
    for _ in range(50):
        [row] = (await admin.call("GET", "accounts"))["data"]
        if row["in_flight"]:
            break
        await asyncio.sleep(0.05)
    assert row["in_flight"] == 1
    await ask
    [row] = (await admin.call("GET", "accounts"))["data"]
    assert row["in_flight"] == 0 and row["last_used"] is not None


async def test_a_refresh_token_is_refreshed_before_it_is_saved(cgw, admin, emu):
    rt = emu.state.issue_refresh_token("user-3")
    added = await admin.call("POST", "accounts", {"token": rt}, status=201)
    row = {a["id"]: a for a in (await admin.call("GET", "accounts"))["data"]}[added["id"]]
    assert row["token_kind"] == "refresh" and row["has_refresh_token"]
    assert row["last_refresh"] is not None and row["next_refresh"] > row["last_refresh"]
    assert row["access_expires_at"] > row["next_refresh"]
    spent = await admin.call("POST", "accounts", {"token": emu.state.issue_refresh_token("x")[:-3]},
                             status=400)
    assert "Kimi did not accept the token" in spent["error"]["message"]


async def test_a_stale_flag_on_a_removed_account_does_not_bring_it_back(cgw, admin):
    """Another replica removed the account, then this one (not reloaded yet) set its flag:
    the tokenless row that left is no account, and the reload drops it here too."""
    added = await admin.call("POST", "accounts", {"token": mint_access_token("user-2")},
                             status=201)
    console = cgw.app[CONSOLE]
    await console.repo.delete_account(added["id"], None)        # removed elsewhere
    await console.repo.save_account(added["id"], None, True)    # the stale flag
    await console.accounts.load()
    rows = (await admin.call("GET", "accounts"))["data"]
    assert added["id"] not in [a["id"] for a in rows]


async def test_a_token_kimi_refuses_leaves_an_account_added_meanwhile(cgw, admin, emu):
    """Adding a token Kimi refuses cleans up what its check stored, but never the account
    that another request (or replica) added under the same alias meanwhile."""
    token = mint_access_token("user-3")
    console = cgw.app[CONSOLE]
    emu.state.revoked_subs.add("user-3")
    real_validate = console.accounts._validate

    async def validate_after_another_add(account):
        problem = await real_validate(account)
        await console.repo.save_account(account.alias, token, False)   # added elsewhere
        return problem
    console.accounts._validate = validate_after_another_add
    await admin.call("POST", "accounts", {"token": token}, status=400)
    assert account_alias_rows(await console.repo.accounts()) == {alias_for(token)}


def account_alias_rows(rows) -> set:
    return {alias for alias, stored, _ in rows if stored}


async def test_added_accounts_and_flags_survive_a_restart(cgw, admin, start_gateway, token):
    second = mint_access_token("user-2")
    added = await admin.call("POST", "accounts", {"token": second}, status=201)
    await admin.call("POST", f"accounts/{added['id']}/disable", {})
    again = await start_gateway(kimi={"tokens": (token,)}, admin={"key": ADMIN})
    async with aiohttp.ClientSession() as s:
        rows = (await Admin(again, s).call("GET", "accounts"))["data"]
    assert {a["id"]: a["state"] for a in rows}[added["id"]] == "disabled"
    assert added["id"] not in [a.alias for a in again.service.pool.accounts]


async def test_a_stream_without_include_usage_still_counts_for_its_key(cgw, admin):
    secret = (await admin.call("POST", "keys", {"name": "ci"}, status=201))["secret"]
    stream = await cgw.client(secret).chat.completions.create(model="kimi", messages=HELLO,
                                                              stream=True)
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks), "the client did not ask for usage"
    [key] = (await admin.call("GET", "keys"))["data"]
    assert key["requests"] == 1 and key["prompt_tokens"] > 0 and key["completion_tokens"] > 0


async def test_a_stream_the_client_leaves_still_counts_for_its_key(cgw, admin, emu):
    """An answer cut short (here the client goes after the first chunks) is counted later,
    off the request path, by the console's fold."""
    secret = (await admin.call("POST", "keys", {"name": "gone"}, status=201))["secret"]
    emu.state.replies.append(Reply(text="word " * 400, chunk=5))
    emu.state.chunk_delay = 0.01
    body = {"model": "kimi", "stream": True, "messages": HELLO}
    async with aiohttp.ClientSession() as s:
        async with s.post(cgw.url + "/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {secret}"}) as r:
            await r.content.readline()
            await r.content.readline()
    for _ in range(100):                # the gateway notices the client is gone
        if cgw.app[TRAFFIC].rows():
            break
        await asyncio.sleep(0.05)
    [key] = [k for k in (await admin.call("GET", "keys"))["data"] if k["name"] == "gone"]
    assert key["requests"] == 1 and key["prompt_tokens"] > 0 and key["completion_tokens"] > 0


async def test_created_keys_authenticate_count_and_stop_when_revoked(cgw, admin):
    made = await admin.call("POST", "keys", {"name": "laptop"}, status=201)
    secret = made["secret"]
    assert secret.startswith("sk-kg-") and len(secret) > 40
    with pytest.raises(openai.AuthenticationError):     # a key now exists: keys are required
        await cgw.client("no-such-key").chat.completions.create(model="kimi", messages=HELLO)
    r = await cgw.client(secret).chat.completions.create(model="kimi", messages=HELLO)
    assert r.usage.prompt_tokens > 0
    keys = {k["name"]: k for k in (await admin.call("GET", "keys"))["data"]}
    assert keys["laptop"]["requests"] == 1
    assert keys["laptop"]["prompt_tokens"] == r.usage.prompt_tokens
    assert keys["laptop"]["completion_tokens"] == r.usage.completion_tokens
    rows = (await admin.call("GET", "traffic?key=laptop"))["data"]
    assert len(rows) == 1 and rows[0]["status"] == 200 and rows[0]["dialect"] == "openai"
    assert rows[0]["model"] == "kimi" and rows[0]["ttft_ms"] is not None
    assert rows[0]["prompt_tokens"] == r.usage.prompt_tokens and rows[0]["account"]
    assert len((await admin.call("GET", "traffic?status=error"))["data"]) == 1   # the 401
    await admin.call("DELETE", f"keys/{made['id']}")
    with pytest.raises(openai.AuthenticationError):
        await cgw.client(secret).chat.completions.create(model="kimi", messages=HELLO)
    rows = await cgw.service.conversations.repo.store.fetchall("SELECT * FROM api_keys")
    assert len(rows) == 1 and "laptop" in rows[0]
    assert hashlib.sha256(secret.encode()).hexdigest() in rows[0]
    assert not any(secret in str(v) for v in rows[0]), "stored hashed, never as is"
    everything = "".join(admin.texts[1:])
    assert secret not in everything and HELLO[0]["content"] not in everything


async def test_series_counts_requests_errors_and_ttft(cgw, admin):
    await cgw.client().chat.completions.create(model="kimi", messages=HELLO)
    series = (await admin.call("GET", "traffic/series?minutes=5"))["data"]
    assert len(series) == 5
    assert sum(p["requests"] for p in series) == 1 and series[-1]["p50"] > 0
    await admin.call("GET", "traffic/series?minutes=9999", status=400)
    await admin.call("GET", "traffic?limit=x", status=400)


async def test_conversations_counted_per_key_and_deleted(cgw, admin, emu):
    made = await admin.call("POST", "keys", {"name": "bot"}, status=201)
    client = cgw.client(made["secret"])
    for cid in ("conv-a", "conv-b"):
        await client.post(f"/chat/completions/{cid}", cast_to=object,
                          body={"model": "kimi", "messages": HELLO})
    counts = (await admin.call("GET", "conversations"))["data"]
    scope = f"key:{made['id']}"
    assert {c["scope"]: (c["name"], c["count"]) for c in counts}[scope] == ("bot", 2)
    listed = await admin.call("GET", f"conversations/{scope}")
    assert sorted(c["id"] for c in listed["data"]) == ["conv-a", "conv-b"]
    await admin.call("DELETE", f"conversations/{scope}/conv-a")
    await admin.call("DELETE", f"conversations/{scope}/conv-a", status=404)
    left = await admin.call("GET", f"conversations/{scope}")
    assert [c["id"] for c in left["data"]] == ["conv-b"]
    assert not re.search("console test prompt", "".join(admin.texts))


async def test_bad_input_gets_a_clear_error(cgw, admin):
    await admin.call("POST", "keys", {"name": ""}, status=400)
    await admin.call("POST", "keys", {"name": "x" * 65}, status=400)
    await admin.call("POST", "accounts", {"token": "a b"}, status=400)
    await admin.call("POST", "accounts/acct-nope/disable", {}, status=404)
    await admin.call("POST", "accounts/acct-nope/explode", {}, status=400)
    await admin.call("DELETE", "keys/ak_nope", status=404)
    await admin.call("DELETE", "keys/0", status=404)


def test_a_short_admin_key_stops_startup(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[admin]\nkey = "short"\n')
    with pytest.raises(ConfigError, match=r"\[admin\] key must be at least 16 characters"):
        load_config(str(path), env={})
    assert load_config(None, env={"ADMIN_KEY": ADMIN}).admin.key == ADMIN


async def test_the_console_address_with_a_slash_leads_to_it(cgw):
    status, headers, _ = await get(cgw.url + "/admin/")
    assert status == 302 and headers["Location"] == "/admin"
