"""Regressions found in review: each failed before its fix."""

import asyncio

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletion

from kimi.app import create_app
from kimi.emulator import Fault, Reply, default_text
from kimi.web.keys import SERVICE
from tests.conftest import make_config
from tests.test_conversations_e2e import sent, stateful, user

HELLO = [{"role": "user", "content": "regression"}]
TOO_LONG = dict(code="invalid_argument", reason="REASON_TOKEN_LENGTH_TOO_LONG")


async def test_a_prefill_after_a_stored_exchange_leaves_the_conversation_free(gw, emu):
    c = gw.client()
    r1 = await c.chat.completions.create(model="kimi", messages=[user("one")])
    a1 = {"role": "assistant", "content": r1.choices[0].message.content}
    # Ends with an assistant turn: not a new turn of the stored chat, answered in its own.
    await c.chat.completions.create(model="kimi", messages=[
        user("one"), a1, user("two"), {"role": "assistant", "content": "pre"}])
    r = await asyncio.wait_for(c.chat.completions.create(
        model="kimi", messages=[user("one"), a1, user("two")]), 5)
    assert r.choices[0].message.content == default_text(2, "two")


async def test_rotation_after_an_overflow_happens_once(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, store={"overflow": "rotate"})
    c = gw.client()
    await stateful(c, "long", [user("a long talk")])
    n0 = len(emu.state.chat_requests)
    for _ in range(5):
        emu.state.replies.append(Reply(fault=Fault("error", after=0, **TOO_LONG)))
    with pytest.raises(openai.BadRequestError) as e:
        await stateful(c, "long", [user("more")])
    assert e.value.code == "context_length_exceeded"
    assert len(emu.state.chat_requests) - n0 == 2      # the turn, then one fresh chat


async def test_unauthenticated_after_output_is_not_replayed(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (emu.state.issue_refresh_token("user-r"),)})
    emu.state.replies.append(Reply(fault=Fault("error", after=2, code="unauthenticated", reason="")))
    s = await gw.client().chat.completions.create(model="kimi", messages=HELLO, stream=True)
    text = ""
    with pytest.raises(openai.APIError):
        async for x in s:
            text += x.choices[0].delta.content or "" if x.choices else ""
    assert len(emu.state.chat_requests) == 1, "the prompt was posted twice"
    assert text.count("[turn 1]") == 1


async def test_concurrent_first_requests_after_a_restart_keep_a_pass_through_account(emu, tmp_path):
    rt0 = emu.state.issue_refresh_token("user-p")
    for n in (1, 2):
        cfg = make_config(emu, tmp_path, pool={"max_streams_per_account": 2})
        server = TestServer(create_app(cfg))
        await server.start_server()
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=rt0, max_retries=0)
        try:
            results = await asyncio.gather(*(client.chat.completions.create(
                model="kimi", messages=HELLO) for _ in range(n)))
            assert all(r.choices[0].message.content for r in results)
            assert [a.state for a in server.app[SERVICE].pool.all_accounts()] == ["healthy"]
        finally:
            await server.close()


async def test_delete_during_a_turn_stays_deleted(gw, emu):
    c = gw.client()
    await stateful(c, "d1", [user("x")])
    emu.state.replies.append(Reply(text="slow answer here", pause=0.3))
    turn = asyncio.ensure_future(stateful(c, "d1", [user("y")]))
    await asyncio.sleep(0.1)
    await c.delete("/conversations/d1", cast_to=object)
    await turn
    assert await gw.service.conversations.repo.store.fetchall("SELECT id FROM conversations") == []
    r = await stateful(c, "d1", [user("z")])          # a new conversation under the same name
    assert sent(emu)[1] is None and r.choices[0].message.content == default_text(1, "z")


async def test_conversation_header_survives_a_keepalive_before_content(start_gateway, emu, token):
    emu.state.heartbeat_interval = 0.05
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"keepalive_seconds": 0.1})
    emu.state.replies.append(Reply(text="late", pause=0.5))
    body = {"model": "kimi", "stream": True, "messages": [user("think first")]}
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions/conv-k", json=body) as resp:
            assert resp.headers["X-Conversation-Id"] == "conv-k"
            raw = (await resp.read()).decode()
    assert raw.startswith(": keep-alive") and raw.endswith("data: [DONE]\n\n")


async def test_an_internal_error_mid_stream_is_in_band(gw, emu, monkeypatch):
    async def broken_save(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(gw.service.conversations, "save", broken_save)
    import aiohttp
    body = {"model": "kimi", "stream": True, "messages": [user("x")]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions/conv-e", json=body) as resp:
            assert resp.status == 200
            raw = (await resp.read()).decode()
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert '"code":"internal_error"' in events[-2] and "disk on fire" not in raw


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stateful_turn_cut_by_stop_is_kept(gw, emu, stream):
    c = gw.client()
    await stateful(c, "m1", [user("x")], stream, stop=["emulator"])
    first_chat = emu.state.last_reply.chat_id
    await stateful(c, "m1", [user("y")], stream)
    assert sent(emu)[:2] == ("y", first_chat)
    conv = await c.get("/conversations/m1", cast_to=object)
    assert conv["messages"][1]["content"] == "[turn 1] Hello from the"


async def test_a_rotated_conversation_deletes_its_old_chat(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, store={"overflow": "rotate"})
    c = gw.client()
    await stateful(c, "long", [user("a long talk")])
    old = emu.state.last_reply.chat_id
    emu.state.replies.append(Reply(fault=Fault("error", after=0, **TOO_LONG)))
    await stateful(c, "long", [user("more")])
    await gw.service.drain()
    assert old in emu.state.deleted
    [(chat,)] = await gw.service.conversations.repo.store.fetchall("SELECT chat_id FROM conversations")
    assert chat != old and chat not in emu.state.deleted


async def test_with_continuation_off_a_cut_answer_is_deleted(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, store={"auto_continue_minutes": 0})
    await gw.client().chat.completions.create(model="kimi", messages=HELLO, max_tokens=3)
    await gw.service.drain()
    assert emu.state.deleted == [emu.state.last_reply.chat_id]
