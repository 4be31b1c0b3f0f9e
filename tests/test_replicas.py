"""Two gateway processes behind a real nginx, sharing PostgreSQL and Redis, against the
emulator: the rules that must hold across replicas (issue: several replicas behind one
address). The servers are started once per session (tests/shared_servers.py)."""

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import openai
import pytest

from kimi.emulator import Reply, mint_access_token
from system_tools import free_port, require
from test_nginx import MAIN, _wait_for_port
from tests.conftest import LOG_FILES

ROOT = Path(__file__).resolve().parent.parent
REPLICAS_SITE = (ROOT / "deploy" / "nginx-replicas.conf").read_text()
ADMIN = "admin-key-for-replica-tests"
CONFIG_KEY = "config-key-for-replica-tests"


class Cluster:
    def __init__(self, tmp_path, emu, postgres_url, redis_url):
        self.tmp, self.emu, self.pg, self.redis = tmp_path, emu, postgres_url, redis_url
        self.procs, self.urls, self.logs = [], [], []
        self.nginx_proc = None
        self.url = None

    async def start(self, tokens, replicas=2, lease_ttl=1.5, margin=300, console=False):
        token_list = ", ".join(f'"{t}"' for t in tokens)
        # With the console on, a config key too: API keys are required from the start.
        extra = f'api_keys = ["{CONFIG_KEY}"]\n[admin]\nkey = "{ADMIN}"\n' if console else ""
        for i in range(replicas):
            port = free_port()
            cfg = self.tmp / f"replica-{i}.toml"
            cfg.write_text(
                f'[server]\nport = {port}\nshutdown_grace_seconds = 2\n{extra}'
                f'[kimi]\nbase_url = "{self.emu.url}"\nauth_url = "{self.emu.url}"\n'
                f'tokens = [{token_list}]\n'
                f'[pool]\nqueue_timeout_seconds = 20\nrefresh_margin_seconds = {margin}\n'
                f'[store]\npath = "{self.tmp / f"unused-{i}.sqlite3"}"\nurl = "{self.pg}"\n'
                f'[coordination]\nredis_url = "{self.redis}"\nlease_ttl_seconds = {lease_ttl}\n')
            log = open(self.tmp / f"replica-{i}.log", "wb")
            LOG_FILES.append(log.name)
            self.logs.append(Path(log.name))
            self.procs.append(await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "gateway.py"), "-c", str(cfg), stdout=log,
                stderr=log, cwd=str(self.tmp)))
            self.urls.append(f"http://127.0.0.1:{port}")
        for url, log in zip(self.urls, self.logs):
            await _wait_healthy(url, log)
        self.url = await self._nginx()
        return self

    async def _nginx(self) -> str:
        port = free_port()
        # The shipped file, with only its addresses changed.
        site = REPLICAS_SITE.replace("listen 80;", f"listen 127.0.0.1:{port};")
        for name, url in zip(("kimi-a", "kimi-b"), self.urls):
            site = site.replace(f"server {name}:8000 ", f"server {url.removeprefix('http://')} ")
        assert "kimi-a" not in site and "kimi-b" not in site
        (self.tmp / "site.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""
        main = MAIN.replace("worker_connections 64;", "worker_connections 512;")
        (self.tmp / "nginx.conf").write_text(main.format(tmp=self.tmp, user=user, http_extra=""))
        self.nginx_proc = await asyncio.create_subprocess_exec(
            require("nginx"), "-p", str(self.tmp), "-e", str(self.tmp / "error.log"),
            "-c", str(self.tmp / "nginx.conf"), stderr=asyncio.subprocess.PIPE)
        await _wait_for_port(port, self.nginx_proc, self.tmp)
        return f"http://127.0.0.1:{port}"

    def served(self) -> list[int]:
        """Chat requests each replica logged."""
        return [log.read_text().count("route='POST /v1/chat/completions") for log in self.logs]

    async def stop(self) -> None:
        for proc in self.procs + [self.nginx_proc]:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _wait_healthy(url: str, log: Path) -> None:
    for _ in range(200):
        try:
            async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise AssertionError("replica did not start: " + log.read_text())


@pytest.fixture
async def cluster(tmp_path, emu, postgres_url, redis_url):
    made = Cluster(tmp_path, emu, postgres_url, redis_url)
    yield made
    await made.stop()


async def chat(session, url, content="hello there", path="", stream=True):
    body = {"model": "kimi", "stream": stream, "messages": [{"role": "user", "content": content}]}
    async with session.post(url + "/v1/chat/completions" + path, json=body) as resp:
        text = await resp.text()
        return resp.status, text


def answer(sse: str) -> str:
    out = []
    for line in sse.splitlines():
        if line.startswith("data: {"):
            delta = json.loads(line[6:])["choices"][0].get("delta") or {}
            out.append(delta.get("content") or "")
    return "".join(out)


async def test_twenty_streams_over_four_accounts_never_overlap_on_an_account(cluster, emu):
    emu.state.chunk_delay = 0.02         # each stream ~0.3 s: they must queue for accounts
    subs = [f"user-{c}" for c in "abcd"]
    await cluster.start([mint_access_token(s) for s in subs])
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(*(chat(s, cluster.url, f"question {i}") for i in range(20)))
    assert [status for status, _ in results] == [200] * 20
    assert all("[DONE]" in text and '"error"' not in text for _, text in results)
    assert sorted(emu.state.max_active) == subs and set(emu.state.max_active.values()) == {1}
    assert all(n > 0 for n in cluster.served()), cluster.served()      # both replicas served
    # Background work once per cluster: one replica asked for the model catalogue.
    assert sum(c.path.endswith("/GetAvailableModels") for c in emu.state.calls) == 1
    assert all("live models" in log.read_text() for log in cluster.logs)


async def test_forty_refreshes_across_replicas_lose_no_token(cluster, emu):
    emu.state.access_ttl = 60            # inside the 300 s margin: every use refreshes
    rt0 = emu.state.issue_refresh_token("user-r")
    await cluster.start([rt0])
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(*(chat(s, cluster.url, f"q {i}", stream=False)
                                         for i in range(40)))
    assert [status for status, _ in results] == [200] * 40, results[0]
    assert emu.state.refresh_calls >= 40          # turns and chat deletions each refreshed
    assert all(n > 0 for n in cluster.served())
    conn = await asyncpg.connect(cluster.pg)
    row = await conn.fetchrow("SELECT refresh_token, version FROM account_tokens")
    await conn.close()
    live = [t for t, sub in emu.state.refresh_tokens.items() if sub == "user-r"]
    assert live == [row["refresh_token"]] and row["version"] == emu.state.refresh_calls


async def test_a_conversation_continues_on_either_replica_one_turn_at_a_time(cluster, emu):
    await cluster.start([mint_access_token("user-c")])
    a, b = cluster.urls
    async with aiohttp.ClientSession() as s:
        for turn, url in enumerate((a, b, a, b), 1):
            status, text = await chat(s, url, f"turn {turn} please", path="/conv-x")
            assert status == 200 and answer(text).startswith(f"[turn {turn}]"), text
        emu.state.chunk_delay = 0.02
        both = await asyncio.gather(chat(s, a, "fifth", path="/conv-x"),
                                    chat(s, b, "sixth", path="/conv-x"))
    # Serialized: the second turn waited and continued after the first (no shared parent).
    assert sorted(answer(t)[:8] for _, t in both) == ["[turn 5]", "[turn 6]"]
    assert len({r["chat_id"] for r in emu.state.chat_requests if r.get("chat_id")}) == 1


async def test_a_stored_response_from_one_replica_continues_and_is_read_on_the_other(
        cluster, emu):
    """Responses are stored in PostgreSQL: replica B continues a response replica A answered
    (`previous_response_id`), and B fetches and deletes what A stored."""
    await cluster.start([mint_access_token("user-resp")])
    a, b = (openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            for url in cluster.urls)
    emu.state.replies.append(Reply(text="Noted: the code word is heron."))
    first = await a.responses.create(model="kimi", input="Remember heron.")
    first_chat = emu.state.last_reply.chat_id
    emu.state.replies.append(Reply(text="It was heron."))
    second = await b.responses.create(model="kimi", input="What was the word?",
                                      previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "It was heron."
    # B continued A's Kimi chat with only the new turn: the history came from PostgreSQL.
    assert emu.state.chat_requests[1].get("chat_id") == first_chat
    assert (await b.responses.retrieve(first.id)).output_text == first.output_text
    assert (await a.responses.retrieve(second.id)).output_text == "It was heron."
    await b.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await a.responses.retrieve(first.id)


async def console(session, url, method, path, body=None, status=200):
    async with session.request(method, f"{url}/admin/api/{path}", json=body,
                               headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def chat_as(session, url, key, content="hello there", stream=False):
    body = {"model": "kimi", "stream": stream, "messages": [{"role": "user", "content": content}]}
    async with session.post(url + "/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.text()


async def until(check, within: float):
    """Seconds until `await check()` is true, asked every 50 ms; fails after `within`."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within, f"not within {within}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_a_console_key_made_on_one_replica_works_on_the_other_and_a_revocation_holds_on_both(
        cluster, emu):
    await cluster.start([mint_access_token("user-key")], console=True)
    a, b = cluster.urls
    async with aiohttp.ClientSession() as s:
        made = await console(s, a, "POST", "keys", {"name": "laptop"}, status=201)
        secret = made["secret"]
        assert (await chat_as(s, b, "sk-kg-not-a-key"))[0] == 401

        async def works_on_b():
            return (await chat_as(s, b, secret))[0] == 200
        await until(works_on_b, 3.0)
        assert (await chat_as(s, a, secret))[0] == 200
        await console(s, b, "DELETE", f"keys/{made['id']}")
        assert (await chat_as(s, b, secret))[0] == 401        # at once where it was revoked

        async def refused_on_a():
            return (await chat_as(s, a, secret))[0] == 401
        await until(refused_on_a, 2.5)
        keys = {k["name"]: k for k in (await console(s, a, "GET", "keys"))["data"]}
        assert keys["laptop"]["revoked_at"] is not None
    # PostgreSQL holds the key's hash, never the secret.
    conn = await asyncpg.connect(cluster.pg)
    row = await conn.fetchrow("SELECT * FROM api_keys")
    await conn.close()
    assert row["id"] == made["id"] and secret not in str(dict(row))
    # No SQLite file beside PostgreSQL: the start line names the shared store, no user in it.
    assert " store=postgresql://127.0.0.1:" in cluster.logs[0].read_text()
    assert not list(cluster.tmp.glob("unused-*.sqlite3"))


async def test_per_key_counters_add_up_across_replicas(cluster, emu):
    await cluster.start([mint_access_token("user-count")], console=True)
    a, b = cluster.urls
    async with aiohttp.ClientSession() as s:
        made = await console(s, a, "POST", "keys", {"name": "team"}, status=201)

        async def known_on_b():
            return (await chat_as(s, b, made["secret"]))[0] == 200
        await until(known_on_b, 3.0)            # one request served by b
        for url in (a, a, b):
            assert (await chat_as(s, url, made["secret"], "count me"))[0] == 200
        for url in (b, a, b, a):                # each folds its own requests into the store
            keys = {k["name"]: k for k in (await console(s, url, "GET", "keys"))["data"]}
        team = keys["team"]
        assert team["requests"] == 4
        assert team["prompt_tokens"] > 0 and team["completion_tokens"] > 0
        # The conversations page reads PostgreSQL too: b's stored conversation shows on a.
        async with s.post(b + "/v1/chat/completions/conv-team", headers={
                "Authorization": f"Bearer {made['secret']}"}, json={
                "model": "kimi", "messages": [{"role": "user", "content": "keep this one"}]}) as r:
            assert r.status == 200
        scopes = (await console(s, a, "GET", "conversations"))["data"]
        assert [c["count"] - c["automatic"] for c in scopes if c["name"] == "team"] == [1]


async def test_an_account_added_on_one_replica_serves_streams_on_the_other(cluster, emu):
    """Added on a with a refresh token, which a rotates while checking it: b takes the rotated
    pair from PostgreSQL. A config account disabled on a is left alone by b too."""
    await cluster.start([mint_access_token("user-base")], console=True)
    a, b = cluster.urls
    rt = emu.state.issue_refresh_token("user-added")
    async with aiohttp.ClientSession() as s:
        base = (await console(s, a, "GET", "accounts"))["data"][0]["id"]
        added = await console(s, a, "POST", "accounts", {"token": rt}, status=201)
        await console(s, a, "POST", f"accounts/{base}/disable")

        async def follows_on_b():
            states = {x["id"]: x["state"] for x in (await console(s, b, "GET", "accounts"))["data"]}
            return states == {base: "disabled", added["id"]: "healthy"}
        await until(follows_on_b, 2.5)
        emu.state.max_active.clear()
        for i in range(3):
            status, text = await chat_as(s, b, CONFIG_KEY, f"stream {i}", stream=True)
            assert status == 200 and "[DONE]" in text and '"error"' not in text, text
        # b used the pair a stored: the refresh token pasted was spent when a checked it.
        assert sorted(emu.state.max_active) == ["user-added"]
        # Removed on b: a stops using it (and the row and its tokens are gone).
        await console(s, a, "POST", f"accounts/{base}/enable")
        await console(s, b, "DELETE", f"accounts/{added['id']}")

        async def gone_on_a():
            listed = (await console(s, a, "GET", "accounts"))["data"]
            return [(x["id"], x["state"]) for x in listed] == [(base, "healthy")]
        await until(gone_on_a, 2.5)
    from kimi.upstream.tokens import key_for
    conn = await asyncpg.connect(cluster.pg)
    rows = await conn.fetch("SELECT alias FROM console_accounts WHERE token IS NOT NULL")
    tokens = await conn.fetch("SELECT alias FROM account_tokens WHERE alias = $1", key_for(rt))
    await conn.close()
    assert rows == [] and tokens == []


async def test_an_operator_logged_in_through_nginx_stays_logged_in(cluster, emu):
    """The console's login session lives in the replica that opened it: the shipped Nginx
    file sends one client's /admin to one replica, which the traffic page names."""
    await cluster.start([mint_access_token("user-login")], console=True)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(cluster.url + "/admin/login", data={"key": ADMIN},
                          allow_redirects=False) as resp:
            assert resp.status == 303
        names = set()
        for _ in range(6):
            async with s.get(cluster.url + "/admin/api/traffic") as resp:
                assert resp.status == 200, await resp.text()
                names.add((await resp.json())["replica"])
    [name] = names
    assert name and "pid" in name


async def test_killing_a_replica_mid_stream_leaves_the_other_serving(cluster, emu):
    await cluster.start([mint_access_token("user-k")], lease_ttl=1.0)
    emu.state.chunk_delay = 0.05
    emu.state.replies.append(Reply(text="x" * 400, chunk=4))     # ~5 s
    a, _ = cluster.urls
    async with aiohttp.ClientSession() as s:
        async with s.post(a + "/v1/chat/completions", json={
                "model": "kimi", "stream": True,
                "messages": [{"role": "user", "content": "long one"}]}) as resp:
            await resp.content.readline()
            cluster.procs[0].send_signal(signal.SIGKILL)
            await cluster.procs[0].wait()
        emu.state.chunk_delay = 0.0
        start = time.monotonic()
        status, text = await chat(s, cluster.url, "still there?")
        waited = time.monotonic() - start
    assert status == 200 and "[DONE]" in text and '"error"' not in text
    assert waited < 4.0, waited          # the dead replica's lease freed within its TTL
    assert set(emu.state.max_active.values()) == {1}


async def test_redis_and_postgres_outages_are_clear_503s_and_heal_without_restart(
        cluster, emu, redis_server, postgres_server):
    await cluster.start([mint_access_token("user-o")])
    async with aiohttp.ClientSession() as s:
        for stop, start, code in ((redis_server.stop, redis_server.start, "coordination_unavailable"),
                                  (postgres_server.stop, postgres_server.start, "store_unavailable")):
            await asyncio.to_thread(stop)
            for url in cluster.urls:
                status, text = await chat(s, url, "during the outage", stream=False)
                assert status == 503 and code in text, text
                async with s.get(url + "/readyz") as r:
                    assert r.status == 503
            await asyncio.to_thread(start)
            for url in cluster.urls * 2:
                status, text = await chat(s, url, "after the outage", stream=False)
                assert status == 200, text
                async with s.get(url + "/readyz") as r:
                    assert r.status == 200


async def test_a_replica_that_loses_its_lease_stops_its_stream(start_gateway, emu, token,
                                                               postgres_url, redis_url):
    """Fail closed: when the lease cannot be renewed (here another holder took the account,
    as after a partition), the stream on it is cut at once, not left to overlap, and the
    upstream stream is closed too."""
    import redis.asyncio as aioredis
    from kimi.upstream.tokens import alias_for
    gw = await start_gateway(kimi={"tokens": (token,)}, store={"url": postgres_url},
                             coordination={"redis_url": redis_url, "lease_ttl_seconds": 0.6})
    emu.state.chunk_delay = 0.05
    emu.state.replies.append(Reply(text="y" * 400, chunk=4))      # ~5 s
    r = aioredis.Redis.from_url(redis_url)
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json={
                "model": "kimi", "stream": True,
                "messages": [{"role": "user", "content": "long one"}]}) as resp:
            await resp.content.readline()
            key = f"kimi:lease:{alias_for(token)}"
            await r.delete(key)
            await r.zadd(key, {"intruder": 9e15})
            start = time.monotonic()
            with pytest.raises(aiohttp.ClientPayloadError):     # cut, never completed
                await resp.read()
            cut_after = time.monotonic() - start
    await r.aclose()
    assert cut_after < 1.5, cut_after
    for _ in range(50):
        if not any(emu.state.active_streams.values()):
            break
        await asyncio.sleep(0.02)
    assert not any(emu.state.active_streams.values())     # the upstream stream was closed


async def test_a_cooldown_on_one_replica_holds_on_the_other(start_gateway, emu, postgres_url,
                                                            redis_url):
    from kimi.emulator import Fault
    shared = dict(kimi={"tokens": (mint_access_token("user-l"),)}, store={"url": postgres_url},
                  coordination={"redis_url": redis_url})
    a, b = await start_gateway(**shared), await start_gateway(**shared)
    emu.state.replies.append(Reply(fault=Fault("http", status=429, code="resource_exhausted",
                                               retry_after=120)))
    async with aiohttp.ClientSession() as s:
        status, text = await chat(s, a.url, "first", stream=False)
        assert status == 429
        start = time.monotonic()
        status, text = await chat(s, b.url, "second", stream=False)
    assert status == 429 and "cooling" in text and time.monotonic() - start < 2
    assert len(emu.state.chat_requests) == 1          # b never tried the cooling account


def test_a_replica_whose_store_is_down_at_start_says_so_and_exits(tmp_path):
    import subprocess
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[server]\nport = {free_port()}\n'
                   f'[store]\nurl = "postgresql://postgres@127.0.0.1:{free_port()}/x"\n')
    done = subprocess.run([sys.executable, str(ROOT / "gateway.py"), "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot start: the shared store (PostgreSQL) cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("section, key, value", [("store", "url", "mysql://db/kimi"),
                                                 ("coordination", "redis_url", "db:6379")])
def test_a_wrong_shared_state_url_is_a_config_error(tmp_path, section, key, value):
    from kimi.config import ConfigError, load_config
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[{section}]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=f"\\[{section}\\] {key} must be a"):
        load_config(str(cfg), env={})


async def test_an_account_found_dead_on_one_replica_is_skipped_by_the_other(
        start_gateway, emu, postgres_url, redis_url):
    dead, good = mint_access_token("user-dead"), mint_access_token("user-good")
    shared = dict(kimi={"tokens": (dead, good)}, store={"url": postgres_url},
                  coordination={"redis_url": redis_url})
    a, b = await start_gateway(**shared), await start_gateway(**shared)
    emu.state.revoked_subs.add("user-dead")
    async with aiohttp.ClientSession() as s:
        for _ in range(2):          # a finds the dead one (and fails over to the good one)
            assert (await chat(s, a.url, "on a", stream=False))[0] == 200
        tried = len(emu.state.chat_requests)
        for _ in range(3):
            assert (await chat(s, b.url, "on b", stream=False))[0] == 200
    assert len(emu.state.chat_requests) == tried + 3      # b never tried the dead account
    [status] = [x for x in b.service.account_status() if x["state"] != "healthy"]
    assert status["state"] == "cooling"


async def test_one_file_sent_through_both_replicas_at_once_is_uploaded_once(
        start_gateway, emu, token, postgres_url, redis_url):
    """The account's lease serializes the two turns; the second finds the first's upload in
    PostgreSQL."""
    import base64
    shared = dict(kimi={"tokens": (token,)}, store={"url": postgres_url},
                  coordination={"redis_url": redis_url})
    a, b = await start_gateway(**shared), await start_gateway(**shared)
    emu.state.upload_delay = 0.2
    data = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 same bytes").decode()
    body = {"model": "kimi", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in it?"},
        {"type": "file", "file": {"file_data": data, "filename": "a.pdf"}}]}]}
    async with aiohttp.ClientSession() as s:
        async def post(url):
            async with s.post(url + "/v1/chat/completions", json=body) as r:
                return r.status
        assert await asyncio.gather(post(a.url), post(b.url)) == [200, 200]
    from kimi.upstream.files import UPLOAD_PATH
    assert sum(c.path == UPLOAD_PATH for c in emu.state.calls) == 1
    assert len(emu.state.files) == 1
