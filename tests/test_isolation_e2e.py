"""Who may see what: conversations, stored tokens and account status belong to the caller that
proves it holds the secret they were made with (a Kimi token, an API key, a bearer)."""

import asyncio

import aiohttp
import openai
import pytest

from kimi.emulator import mint_access_token
from kimi.emulator.tokens import decode_claims
from tests.test_conversations_e2e import sent, stateful, user


@pytest.fixture
def one_alias(monkeypatch):
    """Every token gets the same short alias, as a token found by 2^40 hashes would."""
    same = lambda token: "acct-0123456789"      # noqa: E731
    monkeypatch.setattr("kimi.upstream.accounts.alias_for", same)
    monkeypatch.setattr("kimi.chat.service.alias_for", same, raising=False)


def chat_subs(emu):
    return [decode_claims(c.headers["Authorization"][7:])["sub"]
            for c in emu.state.calls if c.path.endswith(".ChatService/Chat")]


async def test_pass_through_callers_with_the_same_alias_are_apart(start_gateway, emu, one_alias):
    gw = await start_gateway()
    victim = gw.client(api_key=mint_access_token("user-victim"))
    thief = gw.client(api_key=mint_access_token("user-thief"))
    await stateful(victim, "diary", [user("the victim's secret")])
    assert (await thief.get("/conversations", cast_to=object))["data"] == []
    with pytest.raises(openai.NotFoundError):
        await thief.get("/conversations/diary", cast_to=object)
    with pytest.raises(openai.NotFoundError):
        await thief.delete("/conversations/diary", cast_to=object)
    await stateful(thief, "diary", [user("continue")])
    assert sent(emu)[1] is None, "the thief must not continue the victim's chat"
    assert chat_subs(emu) == ["user-victim", "user-thief"]
    assert (await victim.get("/conversations/diary", cast_to=object))["id"] == "diary"


async def test_stored_tokens_are_not_reached_by_a_look_alike_token(start_gateway, emu, one_alias):
    gw = await start_gateway()
    victim_rt = emu.state.issue_refresh_token("user-victim")
    await gw.client(api_key=victim_rt).chat.completions.create(model="kimi", messages=[user("hi")])
    thief_rt = emu.state.issue_refresh_token("user-thief")
    r = await gw.client(api_key=thief_rt).chat.completions.create(model="kimi",
                                                                  messages=[user("hi")])
    assert r.choices[0].message.content
    assert chat_subs(emu) == ["user-victim", "user-thief"]


async def test_api_key_conversations_stay_with_the_key_when_the_list_changes(start_gateway, emu,
                                                                             token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-one", "sk-two")})
    await stateful(gw.client(api_key="sk-two"), "plans", [user("two's plans")])
    # The same store, the list reordered and a key removed.
    later = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-two",)})
    assert (await later.client(api_key="sk-two").get("/conversations/plans",
                                                      cast_to=object))["id"] == "plans"
    again = await start_gateway(kimi={"tokens": (token,)},
                                server={"api_keys": ("sk-two", "sk-one")})
    assert (await again.client(api_key="sk-one").get("/conversations", cast_to=object))["data"] == []


async def test_open_gateway_callers_are_apart_by_the_key_they_send(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)})
    alice, bob = gw.client(api_key="alice"), gw.client(api_key="bob")
    await stateful(alice, "notes", [user("alice's notes")])
    assert (await bob.get("/conversations", cast_to=object))["data"] == []
    with pytest.raises(openai.NotFoundError):
        await bob.delete("/conversations/notes", cast_to=object)
    assert (await alice.get("/conversations/notes", cast_to=object))["id"] == "notes"


async def test_open_gateway_callers_without_a_key_share_one_scope(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)})
    body = {"model": "kimi", "messages": [user("no header")]}
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(gw.url + "/v1/chat/completions/anon", json=body) as resp:
                assert resp.status == 200
        async with s.get(gw.url + "/v1/conversations") as resp:
            listed = await resp.json()
    assert [c["id"] for c in listed["data"]] == ["anon"]
    assert sent(emu)[1] is not None, "the second header-less turn continues the first"


async def test_metrics_need_a_key_when_keys_are_set(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-1",)})
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/metrics") as resp:
            assert resp.status == 401
        async with s.get(gw.url + "/metrics", headers={"Authorization": "Bearer sk-1"}) as resp:
            assert resp.status == 200 and "kimi_gateway_accounts" in await resp.text()


async def test_pass_through_account_list_shows_only_the_callers_own(start_gateway, emu):
    gw = await start_gateway()
    a, b = mint_access_token("user-a"), mint_access_token("user-b")
    for tok in (a, b):
        await gw.client(api_key=tok).chat.completions.create(model="kimi", messages=[user("hi")])
    listed = await gw.client(api_key=a).get("/accounts", cast_to=object)
    assert [x["id"] for x in listed["data"]] == [gw.service.pool.for_client_tokens([a])[0].alias]
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/accounts") as resp:
            assert resp.status == 401


async def test_a_configured_token_rotated_by_an_older_version_is_still_found(start_gateway, emu,
                                                                             tmp_path):
    from kimi.store.sqlite import Store
    from kimi.upstream.tokens import alias_for
    rt0 = emu.state.issue_refresh_token("user-old")
    emu.state.use_refresh_token(rt0)                     # spent by the older version...
    rt1 = emu.state.issue_refresh_token("user-old")      # ...which stored its rotation by alias
    store = Store(str(tmp_path / "store.sqlite3"))
    await store.open()
    await store.save_tokens(alias_for(rt0), rt1, None)
    await store.close()
    gw = await start_gateway(kimi={"tokens": (rt0,)})
    r = await gw.client().chat.completions.create(model="kimi", messages=[user("hi")])
    assert r.choices[0].message.content and chat_subs(emu) == ["user-old"]


async def check(gw, token, **kw):
    return await gw.client(**kw).post("/../token/check", body={"token": token}, cast_to=object)


async def test_token_check_does_not_spend_a_refresh_token(start_gateway, emu):
    gw = await start_gateway()
    rt = emu.state.issue_refresh_token("user-r")
    assert await check(gw, rt) == {"live": True}
    assert emu.state.refresh_calls == 0
    assert emu.state.use_refresh_token(rt) == "user-r", "the user's own token still works"


async def test_token_check_closes_the_sessions_of_rejected_tokens(start_gateway, emu):
    gw = await start_gateway()
    made = []
    pool = gw.service.pool
    new_session = pool._new_session
    pool._new_session = lambda: made.append(new_session()) or made[-1]
    for bad in (mint_access_token("user-x", ttl=-1), "eyJgarbage", "junk"):
        assert await check(gw, bad) == {"live": False}
    await asyncio.sleep(0.05)
    assert made and all(s.closed for s in made)


async def test_token_check_is_rate_limited_and_needs_the_key(start_gateway, emu, token):
    gw = await start_gateway(server={"token_checks_per_minute": 3})
    for _ in range(3):
        await check(gw, "junk")
    with pytest.raises(openai.RateLimitError) as e:
        await check(gw, "junk")
    assert int(e.value.response.headers["Retry-After"]) >= 1
    keyed = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-1",)})
    with pytest.raises(openai.AuthenticationError):
        await check(keyed, "junk")
    assert await check(keyed, "junk", api_key="sk-1") == {"live": False}
