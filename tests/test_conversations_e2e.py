"""Conversations that last: stateful URLs, conversation_id, automatic continuation,
affinity, persistence, isolation."""

import asyncio

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from kimi.app import create_app
from kimi.emulator import Fault, Reply, default_text, mint_access_token
from tests.conftest import make_config


def user(text):
    return {"role": "user", "content": text}


def sent(emu, i=-1):
    req = emu.state.chat_requests[i]
    return (req["message"]["blocks"][0]["text"]["content"], req.get("chat_id"),
            req["message"].get("parent_id"))


async def stateful(client, cid, messages, stream=False, **extra):
    body = {"model": "kimi", "messages": messages, "stream": stream, **extra}
    if not stream:
        return await client.post(f"/chat/completions/{cid}", body=body, cast_to=ChatCompletion)
    chunks = await client.post(f"/chat/completions/{cid}", body=body, cast_to=ChatCompletionChunk,
                               stream=True, stream_cls=openai.AsyncStream[ChatCompletionChunk])
    return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


@pytest.mark.parametrize("stream", [False, True])
async def test_stateful_url_sends_only_the_new_turn(gw, emu, stream):
    c = gw.client()
    first = await stateful(c, "trip-42", [user("I live in Lyon.")], stream)
    first_chat = emu.state.last_reply.chat_id
    first_answer = emu.state.last_reply.message_id
    second = await stateful(c, "trip-42", [user("Where do I live?")], stream)
    text, chat_id, parent = sent(emu)
    assert (text, chat_id, parent) == ("Where do I live?", first_chat, first_answer)
    answer = second if stream else second.choices[0].message.content
    assert answer == default_text(2, "Where do I live?")      # the emulator saw turn 2 of 2
    if not stream:
        assert first.id.startswith("chatcmpl-") and first.id != second.id   # one id per answer


async def test_stateful_url_with_the_whole_history_resent(gw, emu):
    c = gw.client()
    r1 = await stateful(c, "h1", [user("one")])
    chat = emu.state.last_reply.chat_id
    history = [user("one"), {"role": "assistant", "content": r1.choices[0].message.content}, user("two")]
    r2 = await stateful(c, "h1", history)
    assert sent(emu)[:2] == ("two", chat)
    assert r2.choices[0].message.content == default_text(2, "two")


async def test_conversation_id_field_continues_the_answer_id(gw, emu):
    c = gw.client()
    r1 = await c.chat.completions.create(model="kimi", messages=[user("remember 7")],
                                         extra_body={"conversation_id": "none"})
    assert r1.id.startswith("conv-")
    chat = emu.state.last_reply.chat_id
    r2 = await c.chat.completions.create(model="kimi", messages=[user("what number?")],
                                         extra_body={"conversation_id": r1.id})
    assert sent(emu)[:2] == ("what number?", chat)
    assert r2.choices[0].message.content == default_text(2, "what number?")
    with pytest.raises(openai.NotFoundError):
        await c.chat.completions.create(model="kimi", messages=[user("x")],
                                        extra_body={"conversation_id": "conv-unknown"})


@pytest.mark.parametrize("stream", [False, True])
async def test_automatic_continuation_of_a_resent_history(gw, emu, stream):
    c = gw.client()

    async def ask(messages):
        if not stream:
            r = await c.chat.completions.create(model="kimi", messages=messages)
            return r.choices[0].message.content
        s = await c.chat.completions.create(model="kimi", messages=messages, stream=True)
        return "".join([x.choices[0].delta.content or "" async for x in s if x.choices])
    a1 = await ask([user("Hi, I am Ana.")])
    chat = emu.state.last_reply.chat_id
    a2 = await ask([user("Hi, I am Ana."), {"role": "assistant", "content": a1}, user("My name?")])
    assert sent(emu)[:2] == ("My name?", chat)
    assert a2 == default_text(2, "My name?")
    a3 = await ask([user("Hi, I am Ana."), {"role": "assistant", "content": a1}, user("My name?"),
                    {"role": "assistant", "content": a2}, user("Thanks")])
    assert sent(emu)[:2] == ("Thanks", chat) and a3 == default_text(3, "Thanks")
    # one stored row follows the conversation; it is kept for continuation, not listed
    rows = await gw.service.conversations.repo.store.fetchall("SELECT auto FROM conversations")
    assert rows == [(1,)]
    assert (await c.get("/conversations", cast_to=object))["data"] == []
    # a history that does not match what we answered is folded into a fresh chat
    await ask([user("Hi, I am Ana."), {"role": "assistant", "content": "something else"}, user("My name?")])
    text, chat_id, _ = sent(emu)
    assert chat_id is None and text.startswith("user: Hi, I am Ana.")


async def test_conversation_survives_a_restart(emu, tmp_path, token):
    async def run(messages):
        server = TestServer(create_app(make_config(emu, tmp_path, kimi={"tokens": (token,)})))
        await server.start_server()
        try:
            c = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0)
            return await stateful(c, "persist", messages)
        finally:
            await server.close()
    await run([user("first")])
    chat = emu.state.last_reply.chat_id
    r = await run([user("second")])
    assert sent(emu)[:2] == ("second", chat)
    assert r.choices[0].message.content == default_text(2, "second")


async def test_same_id_for_two_callers_is_two_conversations(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-a", "sk-b")})
    a, b = gw.client(api_key="sk-a"), gw.client(api_key="sk-b")
    await stateful(a, "shared", [user("A's secret")])
    await stateful(b, "shared", [user("B speaks")])
    assert sent(emu)[1] is None, "B must not continue A's chat"
    assert sent(emu)[0] == "B speaks"
    listed_b = await b.get("/conversations", cast_to=object)
    assert [x["id"] for x in listed_b["data"]] == ["shared"]
    conv_b = await b.get("/conversations/shared", cast_to=object)
    assert "A's secret" not in str(conv_b)
    await b.delete("/conversations/shared", cast_to=object)
    with pytest.raises(openai.NotFoundError):
        await b.get("/conversations/shared", cast_to=object)
    assert (await a.get("/conversations/shared", cast_to=object))["id"] == "shared"


async def test_bad_ids_are_400(gw):
    for bad in ("-starts-with-dash", "x" * 129, "sp%20ace"):
        with pytest.raises(openai.BadRequestError):
            await stateful(gw.client(), bad, [user("x")])


async def test_affinity_and_rebuild_when_the_owner_dies(start_gateway, emu):
    ta, tb = mint_access_token("user-a"), mint_access_token("user-b")
    gw = await start_gateway(kimi={"tokens": (ta, tb)})
    c = gw.client()
    await stateful(c, "aff", [user("t1")])
    chat_calls = [x for x in emu.state.calls if x.path.endswith(".ChatService/Chat")]
    owner = chat_calls[-1].headers["Authorization"]
    for i in range(3):     # round-robin would alternate; affinity does not
        await stateful(c, "aff", [user(f"t{i + 2}")])
        chat_calls = [x for x in emu.state.calls if x.path.endswith(".ChatService/Chat")]
        assert chat_calls[-1].headers["Authorization"] == owner
    emu.state.revoked_subs.add("user-a" if owner.endswith(ta) else "user-b")
    body = {"model": "kimi", "messages": [user("t5")]}
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer unused"}) as s:
        async with s.post(gw.url + "/v1/chat/completions/aff", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["X-Conversation-Rebuilt"] == "true"
            answer = (await resp.json())["choices"][0]["message"]["content"]
    text, chat_id, _ = sent(emu)
    assert chat_id is None and text.startswith("user: t1") and text.endswith("user: t5")
    assert answer == default_text(1, text)
    # and the conversation now lives on the other account
    await stateful(c, "aff", [user("t6")])
    assert sent(emu)[0] == "t6" and sent(emu)[1] is not None


async def test_concurrent_turns_on_one_conversation_are_serialized(start_gateway, emu, token):
    emu.state.reject_concurrent = False
    emu.state.chunk_delay = 0.005
    gw = await start_gateway(kimi={"tokens": (token,)}, pool={"max_streams_per_account": 4})
    c = gw.client()
    await stateful(c, "busy", [user("start")])
    await asyncio.gather(*(stateful(c, "busy", [user(f"q{i}")]) for i in range(3)))
    conv = await c.get("/conversations/busy", cast_to=object)
    roles = [m["role"] for m in conv["messages"]]
    assert roles == ["user", "assistant"] * 4
    parents = [r["message"].get("parent_id") for r in emu.state.chat_requests[1:]]
    assert len(set(parents)) == 3, "each turn must build on the previous answer"
    assert max(emu.state.max_active.values()) == 1


@pytest.mark.parametrize("mode", ["error", "rotate"])
async def test_context_overflow(start_gateway, emu, token, mode):
    gw = await start_gateway(kimi={"tokens": (token,)}, store={"overflow": mode})
    c = gw.client()
    await stateful(c, "long", [user("a long talk")])
    emu.state.replies.append(Reply(fault=Fault("error", after=0, code="invalid_argument",
                                               reason="REASON_TOKEN_LENGTH_TOO_LONG")))
    if mode == "error":
        with pytest.raises(openai.BadRequestError) as e:
            await stateful(c, "long", [user("more")])
        assert e.value.code == "context_length_exceeded"
        return
    r = await stateful(c, "long", [user("more")])
    text, chat_id, _ = sent(emu)
    assert chat_id is None and "user: a long talk" in text and text.endswith("user: more")
    assert r.choices[0].message.content == default_text(1, text)


async def test_ttl_purge_deletes_the_upstream_chat(gw, emu):
    c = gw.client()
    await stateful(c, "old", [user("x")])
    chat = emu.state.last_reply.chat_id
    await gw.service.conversations.repo.store.execute(
        "UPDATE conversations SET updated_at = updated_at - 8 * 86400, "
        "expires_at = expires_at - 8 * 86400 WHERE id = 'old'")
    assert await gw.service.purge_expired() == 1
    assert chat in emu.state.deleted
    with pytest.raises(openai.NotFoundError):
        await c.get("/conversations/old", cast_to=object)


async def test_delete_endpoint_deletes_the_upstream_chat(gw, emu):
    c = gw.client()
    await stateful(c, "gone", [user("x")])
    chat = emu.state.last_reply.chat_id
    out = await c.delete("/conversations/gone", cast_to=object)
    assert out["deleted"] is True and chat in emu.state.deleted


async def test_an_answer_id_continued_by_name_becomes_a_named_conversation(gw, emu):
    c = gw.client()
    r1 = await c.chat.completions.create(model="kimi", messages=[user("plain start")])
    r2 = await c.chat.completions.create(model="kimi", messages=[user("go on")],
                                         extra_body={"conversation_id": r1.id})
    assert r2.choices[0].message.content == default_text(2, "go on")
    [conv] = (await c.get("/conversations", cast_to=object))["data"]
    assert conv["id"] == r1.id and conv["expires_at"] - conv["updated_at"] == 7 * 86400


async def test_a_store_from_before_the_auto_and_expiry_columns_is_migrated(tmp_path):
    import sqlite3
    from kimi.store.conversations import ConversationRepo
    from kimi.store.sqlite import Store
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE conversations (scope TEXT NOT NULL, id TEXT NOT NULL, account TEXT "
                   "NOT NULL, chat_id TEXT, parent_id TEXT, transcript TEXT NOT NULL, digest TEXT "
                   "NOT NULL, model TEXT, ttl_seconds REAL NOT NULL, created_at REAL NOT NULL, "
                   "updated_at REAL NOT NULL, PRIMARY KEY (scope, id))")
        db.execute("INSERT INTO conversations VALUES ('s', 'c', 'a', 'x', 'p', '[]', 'd', 'kimi', 60, 0, 0)")
        db.execute("INSERT INTO conversations VALUES ('s', 'd', 'a', 'y', 'p', '[]', 'e', 'kimi', 60, "
                   "0, 9e12)")
    store = Store(str(path))
    await store.open()
    try:
        assert await store.fetchall("SELECT id, auto, expires_at FROM conversations ORDER BY id") \
            == [("c", 0, 60.0), ("d", 0, 9e12 + 60)]
        # The purge finds the expired row by the new column and leaves the other.
        assert [c.id for c in await ConversationRepo(store).expired()] == ["c"]
        plan = await store.fetchall("EXPLAIN QUERY PLAN SELECT id FROM conversations "
                                    "WHERE expires_at < 1")
        assert "conversations_expiry" in plan[0][-1]
        # A row left without an expiry (a migration cut short, an older version's write)
        # gets one on the next start.
        await store.execute("UPDATE conversations SET expires_at = 0 WHERE id = 'd'")
    finally:
        await store.close()
    store = Store(str(path))
    await store.open()
    try:
        assert await store.fetchall("SELECT expires_at FROM conversations WHERE id = 'd'") \
            == [(9e12 + 60,)]
    finally:
        await store.close()
