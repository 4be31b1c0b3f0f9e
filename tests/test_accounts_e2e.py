"""The account pool: refresh and rotation, health, cooldowns, failover, limits."""

import asyncio
import sqlite3

import aiohttp
import openai
import pytest

from kimi.app import create_app
from kimi.emulator import Fault, Reply, default_text, mint_access_token
from tests.conftest import make_config

HELLO = [{"role": "user", "content": "pool test"}]


def stored_tokens(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT alias, refresh_token, access_token FROM account_tokens").fetchall()


async def ask(gw, **kw):
    r = await gw.client(**kw).chat.completions.create(model="kimi", messages=HELLO)
    return r.choices[0].message.content


async def test_refresh_token_is_exchanged_and_the_rotated_one_saved_before_use(start_gateway, emu):
    rt0 = emu.state.issue_refresh_token("user-r")
    gw = await start_gateway(kimi={"tokens": (rt0,)})
    store = gw.service.upstream.tokens.store
    saved_at = []
    original = store.save_tokens

    async def spy(*args):
        await original(*args)
        saved_at.append(asyncio.get_running_loop().time())
    store.save_tokens = spy
    assert await ask(gw) == default_text(1, HELLO[0]["content"])
    assert emu.state.refresh_calls == 1
    [(alias, rt1, at1)] = stored_tokens(gw.config.store.path)
    assert rt1 != rt0 and rt1 in emu.state.refresh_tokens and rt0 not in emu.state.refresh_tokens
    chat_call = next(c for c in emu.state.calls if c.path.endswith("/Chat"))
    assert chat_call.headers["Authorization"] == f"Bearer {at1}"
    assert saved_at and saved_at[0] <= chat_call.time


async def start_stop(emu, tmp_path, tokens):
    """A gateway we can stop and start again on the same store (a restart)."""
    from aiohttp.test_utils import TestServer
    server = TestServer(create_app(make_config(emu, tmp_path, kimi={"tokens": tokens})))
    await server.start_server()
    return server


async def test_rotation_survives_a_restart(emu, tmp_path):
    rt0 = emu.state.issue_refresh_token("user-r")
    msgs = HELLO
    for round_ in range(3):
        server = await start_stop(emu, tmp_path, (rt0,))
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0)
        try:
            r = await client.chat.completions.create(model="kimi", messages=msgs)
            assert r.choices[0].message.content
            # Invalidate the access token server-side: the next run must refresh with the
            # refresh token the previous run saved, since rt0 is long spent.
            [(_, _, at)] = stored_tokens(str(tmp_path / "store.sqlite3"))
            emu.state.revoked_tokens.add(at)
        finally:
            await server.close()
    assert emu.state.refresh_calls == 3


@pytest.mark.parametrize("style", ["http", "stream"])
async def test_401_refreshes_once_and_retries(start_gateway, emu, style):
    emu.state.auth_error_style = style
    rt0 = emu.state.issue_refresh_token("user-r")
    gw = await start_gateway(kimi={"tokens": (rt0,)})
    await ask(gw)
    emu.state.revoked_tokens.add(gw.service.pool.accounts[0].access_token)
    assert await ask(gw) == default_text(1, HELLO[0]["content"])
    assert emu.state.refresh_calls == 2
    assert gw.service.pool.accounts[0].state == "healthy"


async def test_legacy_refresh_when_the_account_gateway_refuses(start_gateway, emu):
    emu.state.refresh_gateway_refuses = True
    gw = await start_gateway(kimi={"tokens": (emu.state.issue_refresh_token("user-r"),)})
    assert await ask(gw)
    assert any(c.path == "/api/auth/token/refresh" for c in emu.state.calls)


async def test_refused_refresh_marks_the_account_dead_with_a_reason(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (emu.state.issue_refresh_token("user-r"),)})
    emu.state.revoked_subs.add("user-r")
    with pytest.raises(openai.APIStatusError) as e:
        await ask(gw)
    assert e.value.status_code == 503
    [status] = (await gw.client().get("/accounts", cast_to=object))["data"]
    assert status["state"] == "dead" and "refresh" in status["last_error"]
    assert emu.state.chat_requests == []


async def test_expired_access_token_without_refresh_is_reported(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-x", ttl=-5),)})
    with pytest.raises(openai.APIStatusError) as e:
        await ask(gw)
    assert e.value.status_code == 503 and "expired" in e.value.message


async def test_overload_fails_over_to_a_healthy_second_account(start_gateway, emu):
    a, b = mint_access_token("user-a"), mint_access_token("user-b")
    gw = await start_gateway(kimi={"tokens": (a, b)})
    emu.state.replies.append(Reply(fault=Fault("error", after=0)))
    assert await ask(gw) == default_text(1, HELLO[0]["content"])
    subs = [c.headers["Authorization"] for c in emu.state.calls if c.path.endswith("/Chat")]
    assert len(subs) == 2 and subs[0] != subs[1]
    states = sorted(x["state"] for x in gw.service.account_status())
    assert states == ["cooling", "healthy"]
    # the failed chat was cleaned up at once; the answered one is kept for continuation
    await gw.service.drain()
    assert len(emu.state.deleted) == 1
    assert emu.state.deleted[0] != emu.state.last_reply.chat_id


async def test_paywall_is_402_and_not_retried(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"), mint_access_token("user-b"))})
    emu.state.replies.append(Reply(fault=Fault("error", after=0, reason="REASON_PAYWALL",
                                               paywall={"title": "Upgrade"})))
    with pytest.raises(openai.APIStatusError) as e:
        await ask(gw)
    assert e.value.status_code == 402
    assert len(emu.state.chat_requests) == 1


async def test_http_429_cools_the_account_for_retry_after(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),)})
    emu.state.replies.append(Reply(fault=Fault("http", status=429, code="resource_exhausted", retry_after=120)))
    with pytest.raises(openai.RateLimitError):
        await ask(gw)
    [status] = gw.service.account_status()
    assert status["state"] == "cooling" and status["cooldown_until"] is not None
    # while it cools, a request fails fast with 429 instead of hanging
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(openai.RateLimitError) as e:
        await ask(gw)
    assert loop.time() - t0 < 5 and "cooling" in e.value.message


async def test_twenty_streams_on_two_accounts_never_overlap_upstream(start_gateway, emu):
    emu.state.chunk_delay = 0.002
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"), mint_access_token("user-b"))},
                             pool={"queue_timeout_seconds": 60.0})

    async def one(i):
        stream = await gw.client().chat.completions.create(
            model="kimi", stream=True, messages=[{"role": "user", "content": f"n{i}"}])
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    texts = await asyncio.gather(*(one(i) for i in range(20)))
    assert sorted(texts) == sorted(default_text(1, f"n{i}") for i in range(20))
    assert emu.state.max_active == {"user-a": 1, "user-b": 1}
    assert all(a.in_flight == 0 for a in gw.service.pool.accounts)


async def test_full_queue_gets_429_not_a_hang(start_gateway, emu):
    emu.state.chunk_delay = 0.05
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),)},
                             pool={"queue_timeout_seconds": 0.3})
    emu.state.replies.append(Reply(text="slow " * 40, chunk=10))
    first = asyncio.ensure_future(ask(gw))
    await asyncio.sleep(0.1)
    with pytest.raises(openai.RateLimitError) as e:
        await ask(gw)
    assert "busy" in e.value.message
    assert await first == "slow " * 40


async def test_idle_upstream_ends_the_stream_with_an_error(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),), "idle_timeout_seconds": 0.4})
    emu.state.replies.append(Reply(fault=Fault("silence", seconds=3)))
    with pytest.raises(openai.APIStatusError) as e:
        await ask(gw)
    assert e.value.status_code == 504 and "silent" in e.value.message


async def test_keepalive_comments_while_upstream_thinks(start_gateway, emu):
    emu.state.heartbeat_interval = 0.1
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),)},
                             server={"keepalive_seconds": 0.2})
    emu.state.replies.append(Reply(text="after the pause", pause=1.0))
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions",
                          json={"model": "kimi", "stream": True, "messages": HELLO}) as resp:
            raw = (await resp.read()).decode()
    before_content = raw.split('"content":"after')[0]
    assert before_content.count(": keep-alive") >= 2
    assert raw.endswith("data: [DONE]\n\n")


async def test_token_check(start_gateway, emu):
    gw = await start_gateway()
    async def check(token):
        return await gw.client().post("/../token/check", body={"token": token}, cast_to=object)
    assert await check(mint_access_token("user-a")) == {"live": True}
    assert await check(mint_access_token("user-a", ttl=-1)) == {"live": False}
    assert await check(emu.state.issue_refresh_token("user-r")) == {"live": True}
    assert await check("garbage") == {"live": False}


async def test_pass_through_refresh_token_keeps_working_after_rotation(start_gateway, emu):
    gw = await start_gateway()
    rt0 = emu.state.issue_refresh_token("user-p")
    assert await ask(gw, api_key=rt0)
    emu.state.revoked_tokens.add(gw.service.pool.for_client_tokens([rt0])[0].access_token)
    assert await ask(gw, api_key=rt0)   # rt0 itself is spent; the stored rotation is used
    assert emu.state.refresh_calls == 2


async def test_account_status_is_masked_and_protected(start_gateway, emu):
    tok = mint_access_token("user-a")
    gw = await start_gateway(kimi={"tokens": (tok,)}, server={"api_keys": ("sk-1",)})
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/accounts") as resp:
            assert resp.status == 401
        async with s.get(gw.url + "/v1/accounts", headers={"Authorization": "Bearer sk-1"}) as resp:
            body = await resp.text()
    assert tok not in body and tok[-20:] not in body
    assert '"state": "healthy"' in body or '"state":"healthy"' in body


async def test_refresh_is_single_flight(start_gateway, emu):
    emu.state.call_delay = 0.05          # widen the window in which two refreshes could overlap
    gw = await start_gateway(kimi={"tokens": (emu.state.issue_refresh_token("user-r"),)},
                             pool={"max_streams_per_account": 4})
    emu.state.reject_concurrent = False
    account = gw.service.pool.accounts[0]
    account.access_token = None          # as if the startup refresh had not happened yet
    n0 = emu.state.refresh_calls
    answers = await asyncio.gather(*(ask(gw) for _ in range(4)))
    assert all(answers)
    assert emu.state.refresh_calls - n0 <= 1


async def test_refresh_happens_before_expiry_off_the_request_path(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (emu.state.issue_refresh_token("user-r"),)})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while emu.state.refresh_calls == 0 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert emu.state.refresh_calls == 1, "the account was not refreshed at startup"
    calls_before = len(emu.state.calls)
    await ask(gw)
    paths = [c.path for c in emu.state.calls[calls_before:]]
    assert paths[0].endswith(".ChatService/Chat"), paths   # nothing else before the first token
    assert emu.state.refresh_calls == 1


async def test_a_5xx_prefers_the_other_account_without_benching_this_one(start_gateway, emu):
    a, b = mint_access_token("user-a"), mint_access_token("user-b")
    gw = await start_gateway(kimi={"tokens": (a, b)})
    emu.state.replies.append(Reply(fault=Fault("http", status=500, code="internal")))
    assert await ask(gw)
    chats = [c.headers["Authorization"] for c in emu.state.calls if c.path.endswith(".ChatService/Chat")]
    failed, good = chats
    for _ in range(3):
        await ask(gw)
    chats = [c.headers["Authorization"] for c in emu.state.calls if c.path.endswith(".ChatService/Chat")]
    assert chats[2:] == [good] * 3
    assert all(s["state"] == "healthy" for s in gw.service.account_status())
    # a lone account is not benched by one 5xx
    lone = await start_gateway(kimi={"tokens": (mint_access_token("user-c"),)})
    emu.state.replies.append(Reply(fault=Fault("http", status=500, code="internal")))
    with pytest.raises(openai.APIStatusError):
        await ask(lone)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await ask(lone)
    assert loop.time() - t0 < 1


async def test_a_pass_through_token_that_is_also_configured_is_one_account(start_gateway, emu, token):
    emu.state.chunk_delay = 0.005
    gw = await start_gateway(kimi={"tokens": (token,)}, pool={"queue_timeout_seconds": 30.0})
    answers = await asyncio.gather(ask(gw), ask(gw, api_key=token), ask(gw), ask(gw, api_key=token))
    assert all(answers)
    assert emu.state.max_active == {"user-1": 1}
    assert len(gw.service.account_status()) == 1


async def test_one_overload_does_not_bench_a_lone_account(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),)})
    emu.state.replies.append(Reply(fault=Fault("error", after=0)))
    with pytest.raises(openai.RateLimitError) as e:
        await ask(gw)
    assert int(e.value.response.headers["Retry-After"]) >= 1
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/readyz") as resp:
        assert resp.status == 200, "one blip does not make the gateway unready"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await ask(gw) == default_text(1, HELLO[0]["content"]), "it waits for the account"
    assert loop.time() - t0 < 4


def test_limits_without_retry_after_escalate_only_when_close_together():
    from kimi.upstream.accounts import MAX_COOLDOWN, Account
    account = Account(mint_access_token("user-a"))
    first = account.rate_limited(None, "overload")
    assert first <= 2 and account.rate_limited(None, "overload") == 2 * first
    for _ in range(10):
        last = account.rate_limited(None, "overload")
    assert last == MAX_COOLDOWN
    account.last_strike -= 10 * MAX_COOLDOWN          # a long quiet spell
    assert account.rate_limited(None, "overload") == first
    assert account.rate_limited(120, "http 429") == 120   # Kimi's own number stands


async def test_token_check_of_junk_leaves_nothing_behind(start_gateway, emu):
    gw = await start_gateway()
    for junk in ("junk1", "eyJgarbage", "x.y.z"):
        out = await gw.client().post("/../token/check", body={"token": junk}, cast_to=object)
        assert out == {"live": False}
    assert gw.service.account_status() == []
    with pytest.raises(openai.AuthenticationError) as e:
        await ask(gw, api_key="nonsense")
    assert "not a Kimi token" in e.value.message


async def test_token_writes_are_synced_and_others_are_not(tmp_path):
    """A rotated refresh token must be on disk before use (FULL); conversations need not be."""
    from kimi.store.sqlite import Store
    store = Store(str(tmp_path / "s.sqlite3"))
    await store.open()
    seen = []
    store._db.set_trace_callback(seen.append)
    try:
        await store.save_tokens("acct-x", "rt", "at")
        assert seen[0] == "PRAGMA synchronous=FULL" and seen[-1] == "PRAGMA synchronous=NORMAL"
        assert any(s.startswith("INSERT INTO account_tokens") for s in seen)
        assert (await store.fetchone("PRAGMA synchronous"))[0] == 1      # NORMAL again
        assert await store.load_tokens("acct-x") == ("rt", "at")
    finally:
        await store.close()
