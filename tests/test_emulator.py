"""Tests of the offline Kimi Gen B emulator (kimi.emulator), using a raw aiohttp client."""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import orjson
import pytest

from kimi.emulator import (DEFAULT_THINK, EMULATOR, EmulatorState, Fault, Reply, create_app,
                           default_text, mint_access_token)

pytestmark = pytest.mark.asyncio

CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
DELETE = "/apiv2/kimi.chat.v1.ChatService/DeleteChat"
GW = "/apiv2/kimi.gateway.chat.v1.ChatService/"
MODELS = "/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels"
REFRESH = "/api/account.gateway.v1.AuthService/RefreshToken"
LEGACY = "/api/auth/token/refresh"
USER = "/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser"
UPLOAD = "/apiv2-files/file/upload"
PROGRESS = "/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress"
TOKEN = mint_access_token("user-1")


def frame(obj) -> bytes:
    payload = orjson.dumps(obj)
    return struct.pack(">BI", 0, len(payload)) + payload


def unframe(data: bytes) -> list[tuple[int, dict]]:
    frames, i = [], 0
    while i < len(data):
        flag, length = struct.unpack(">BI", data[i:i + 5])
        frames.append((flag, orjson.loads(data[i + 5:i + 5 + length])))
        i += 5 + length
    assert i == len(data)
    return frames


def body(prompt="hi", chat_id=None, parent_id=None, thinking=False, search=False, files=()):
    message = {"role": "user", "blocks": [{"message_id": "", "text": {"content": prompt}}],
               "scenario": "SCENARIO_K2D5"}
    message["blocks"] += [{"file": {"id": f, "status": "PROCESS_STATUS_SUCCESS"}} for f in files]
    if parent_id is not None:
        message["parent_id"] = parent_id
    out = {"scenario": "SCENARIO_K2D5", "message": message, "options": {"thinking": thinking}}
    if chat_id is not None:
        out["chat_id"] = chat_id
    if search:
        out["tools"] = [{"type": "TOOL_TYPE_SEARCH", "search": {}}]
    return out


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


async def start(aiohttp_client, **knobs):
    state = EmulatorState()
    for name, value in knobs.items():
        setattr(state, name, value)
    client = await aiohttp_client(create_app(state))
    assert client.app[EMULATOR] is state
    return client, state


async def chat(client, payload, token=TOKEN, raw=None):
    headers = {**auth(token), "Content-Type": "application/connect+json"}
    async with client.post(CHAT, data=raw if raw is not None else frame(payload),
                           headers=headers) as resp:
        data = await resp.read()
        if resp.content_type != "application/connect+json":
            return resp.status, orjson.loads(data)
        return resp.status, unframe(data)


async def unary(client, path, payload=None, token=TOKEN):
    async with client.post(path, json=payload or {}, headers=auth(token)) as resp:
        return resp.status, await resp.json()


def masks(frames):
    return [f.get("mask") or next((k for k in f if k != "eventOffset"), "") for _, f in frames]


def text_of(frames, kind="text"):
    return "".join(f["block"][kind]["content"] for _, f in frames
                   if f.get("mask", "").startswith(f"block.{kind}"))


async def test_canonical_sequence(aiohttp_client):
    client, state = await start(aiohttp_client)
    status, frames = await chat(client, body("Hello there"))
    assert status == 200
    seq = masks(frames)
    assert seq[:4] == ["heartbeat", "chat", "message", "message"]
    assert seq[4] == "block.text" and set(seq[5:-4]) == {"block.text.content"}
    assert seq[-4:] == ["chat.name", "message.status", "done", ""]
    assert [flag for flag, _ in frames[:-1]] == [0] * (len(frames) - 1)
    assert frames[-1] == (2, {})
    offsets = [f["eventOffset"] for _, f in frames[1:-1]]
    assert offsets == list(range(1, len(offsets) + 1))
    user, assistant = frames[2][1]["message"], frames[3][1]["message"]
    chat_id = frames[1][1]["chat"]["id"]
    assert frames[1][1]["chat"]["name"] == "Untitled Chat"
    assert user["role"] == "user" and user["parentId"] == chat_id
    assert user["blocks"] == [{"messageId": "", "text": {"content": "Hello there"}}]
    assert assistant["status"] == "MESSAGE_STATUS_GENERATING" and assistant["parentId"] == user["id"]
    expected = default_text(1, "Hello there")
    assert expected == ("[turn 1] Hello from the emulator \u2713 \u4e2d\u6587 \U0001F389. "
                        "You said: Hello there")
    assert text_of(frames) == expected
    assert frames[-3][1]["message"]["status"] == "MESSAGE_STATUS_COMPLETED"
    assert frames[-2][1]["done"] == {}
    assert state.last_reply.text == expected and state.last_reply.chat_id == chat_id
    record = state.chats[chat_id]
    assert record.sub == "user-1" and [m.role for m in record.messages] == ["user", "assistant"]
    assert state.chat_requests[0]["message"]["blocks"][0]["text"]["content"] == "Hello there"
    assert state.calls[0].body == state.chat_requests[0]


async def test_thinking_only_when_asked(aiohttp_client):
    client, state = await start(aiohttp_client)
    _, frames = await chat(client, body("q", thinking=True))
    seq = masks(frames)
    assert seq.index("block.think") < seq.index("block.text")
    assert text_of(frames, "think") == DEFAULT_THINK
    state.replies.append(Reply(text="answer", think="custom thought"))
    _, frames = await chat(client, body("q", thinking=True))
    assert text_of(frames, "think") == "custom thought" and text_of(frames) == "answer"
    state.replies.append(Reply(think="ignored"))
    _, frames = await chat(client, body("q"))
    assert not [m for m in masks(frames) if m.startswith("block.think")]


async def test_scripted_reply_waits_for_a_prompt_that_matches(aiohttp_client):
    client, state = await start(aiohttp_client)
    state.replies.extend([Reply(text="the call", when="schema"), Reply(text="any prompt")])
    _, frames = await chat(client, body("a title, please"))
    assert text_of(frames) == "any prompt"
    _, frames = await chat(client, body("another side call"))
    assert text_of(frames).startswith("[turn 1] Hello from the emulator")
    _, frames = await chat(client, body("tools and their schema"))
    assert text_of(frames) == "the call" and not state.replies


async def test_search_only_when_declared(aiohttp_client):
    client, state = await start(aiohttp_client)
    _, frames = await chat(client, body("latest news", search=True))
    seq = masks(frames)
    assert seq.index("block.tool") < seq.index("message.refs.searchChunks") < seq.index("block.text")
    assert "block.tool.contents,block.tool.status" in seq
    assert "\ue3a0cite\ue3a3web_search:1#0\ue3a8" in text_of(frames)
    _, frames = await chat(client, body("latest news"))
    assert not [m for m in masks(frames) if "tool" in m or "refs" in m]
    _, frames = await chat(client, body("plain question", search=True))
    assert "block.tool" not in masks(frames)
    results = [{"title": "T", "url": "https://t.example", "snippet": "s", "siteName": "t"}]
    state.replies.append(Reply(text="One. Two.", search=results, citations="2026"))
    _, frames = await chat(client, body("anything", search=True))
    contents = [f for _, f in frames if f.get("mask") == "block.tool.contents,block.tool.status"]
    item = contents[0]["block"]["tool"]["contents"][0]["searchResult"]
    assert item["base"]["url"] == "https://t.example" and item["refIndex"] == "web_search:1#0"
    cite = "\U0001F6E0cite\ue3a3web_search:1#0\U0001F3A8"
    assert text_of(frames) == f"One.{cite} Two.{cite}"


async def test_follow_up_keeps_chat_and_tree(aiohttp_client):
    client, state = await start(aiohttp_client)
    _, first = await chat(client, body("one"))
    chat_id = first[1][1]["chat"]["id"]
    assistant_id = first[3][1]["message"]["id"]
    _, second = await chat(client, body("two", chat_id=chat_id, parent_id=assistant_id))
    assert second[1][1]["chat"]["id"] == chat_id
    assert second[2][1]["message"]["parentId"] == assistant_id
    assert text_of(second) == default_text(2, "two")
    user2 = second[2][1]["message"]["id"]
    camel = body("three")
    camel["chatId"] = chat_id
    camel["message"]["parentId"] = user2
    _, third = await chat(client, camel)
    assert third[2][1]["message"]["parentId"] == user2 and text_of(third) == default_text(3, "three")
    assert len(state.chats) == 1 and len(state.chats[chat_id].messages) == 6
    _, frames = await chat(client, body("x", chat_id="nope"))
    assert frames == [(2, {"error": {"code": "not_found", "message": "chat not found"}})]
    _, frames = await chat(client, body("x", chat_id=chat_id), token=mint_access_token("user-2"))
    assert frames[-1][1]["error"]["code"] == "permission_denied"
    _, frames = await chat(client, body("x", chat_id=chat_id, parent_id="bogus"))
    assert frames[-1][1]["error"]["code"] == "invalid_argument"
    status, listed = await unary(client, GW + "ListMessages", {"chat_id": chat_id})
    assert status == 200 and listed["messages"][0]["id"] == third[3][1]["message"]["id"]
    status, got = await unary(client, GW + "GetChat", {"chat_id": chat_id})
    assert got["chat"]["name"] == "Emulated chat"


async def test_empty_ids_and_xid(aiohttp_client):
    client, state = await start(aiohttp_client, id_style="xid")
    _, frames = await chat(client, body("a", chat_id="", parent_id=""))
    chat_id = frames[1][1]["chat"]["id"]
    assert len(chat_id) == 20 and chat_id.isalnum() and chat_id.lower() == chat_id
    state.strict_empty_ids = True
    _, frames = await chat(client, body("a", chat_id=""))
    assert frames[-1][1]["error"]["code"] == "invalid_argument"


async def test_delete_and_list(aiohttp_client):
    client, state = await start(aiohttp_client)
    ids = []
    for _ in range(3):
        _, frames = await chat(client, body("x"))
        ids.append(frames[1][1]["chat"]["id"])
    _, listed = await unary(client, "/apiv2/kimi.chat.v1.ChatService/ListChats", {"page_size": 2})
    assert len(listed["chats"]) == 2 and listed["nextPageToken"]
    assert await unary(client, DELETE, {"chat_id": ids[0]}) == (200, {})
    assert state.deleted == [ids[0]] and state.chats[ids[0]].deleted
    status, err = await unary(client, DELETE, {"chat_id": ids[0]})
    assert status == 404 and err["code"] == "not_found"
    _, frames = await chat(client, body("x", chat_id=ids[0]))
    assert frames[-1][1]["error"]["code"] == "not_found"
    batch = "/apiv2/kimi.chat.v1.ChatService/BatchDeleteChats"
    assert await unary(client, batch, {"chat_ids": ids[1:]}) == (200, {})
    assert state.deleted == ids


@pytest.mark.parametrize("style", ["http", "stream"])
async def test_auth_rejection(aiohttp_client, style):
    client, state = await start(aiohttp_client, auth_error_style=style)
    state.revoked_subs.add("bad")
    bad = [mint_access_token(ttl=-5), state.issue_refresh_token(), "garbage",
           mint_access_token("bad"), mint_access_token(app_id="other")]
    for token in bad:
        status, result = await chat(client, body(), token=token)
        if style == "http":
            assert status == 401 and result["code"] == "unauthenticated"
        else:
            assert status == 200 and result[-1][0] == 2
            assert result[-1][1]["error"]["code"] == "unauthenticated"
    status, err = await unary(client, USER, token=mint_access_token(ttl=-5))
    assert status == 401 and err["code"] == "unauthenticated"
    assert not state.chats


async def test_bare_json_rejected(aiohttp_client):
    client, state = await start(aiohttp_client)
    raw = orjson.dumps(body())
    status, err = await chat(client, None, raw=raw)
    assert status == 400 and err["code"] == "invalid_argument"
    status, err = await chat(client, None, raw=frame(body()) + b"\x00")
    assert status == 400 and err["code"] == "invalid_argument"
    state.bad_frame_style = "stream"
    status, frames = await chat(client, None, raw=raw)
    assert status == 200 and frames[-1][1]["error"]["code"] == "invalid_argument"
    assert not state.chats and not state.chat_requests


async def test_fault_http_and_magic(aiohttp_client):
    client, state = await start(aiohttp_client)
    state.replies.append(Reply(fault=Fault("http", status=429, retry_after=7)))
    async with client.post(CHAT, data=frame(body()), headers=auth()) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "7"
        assert (await resp.json())["code"] == "resource_exhausted"
    status, err = await chat(client, body("boom [[fault:http]]"))
    assert status == 500 and err["code"] == "internal"
    assert not state.chats


async def test_fault_error_variants(aiohttp_client):
    client, state = await start(aiohttp_client)
    state.replies.append(Reply(text="abcdefghijkl", chunk=2,
                               fault=Fault("error", after=2, paywall={"x": 1})))
    _, frames = await chat(client, body())
    assert text_of(frames) == "abcd"
    error = frames[-2][1]["error"]
    assert frames[-2][0] == 0 and frames[-1] == (2, {"error": error})
    assert error["code"] == "resource_exhausted"
    debug = error["details"][0]["debug"]
    assert debug["reason"] == "REASON_SERVER_OVERLOADED_FOR_FREE_USER" and debug["paywall"] == {"x": 1}
    assert "done" not in masks(frames)
    state.replies.append(Reply(fault=Fault("error", where="endstream", code="unavailable")))
    _, frames = await chat(client, body())
    assert frames[-2][1].get("mask") == "message" and frames[-1][1]["error"]["code"] == "unavailable"
    state.replies.append(Reply(fault=Fault("error", prelude=False)))
    count = len(state.chats)
    _, frames = await chat(client, body())
    assert masks(frames) == ["heartbeat", "error", "error"] and len(state.chats) == count
    state.replies.append(Reply(text="ok", fault=Fault("done_then_error", reason="REASON_X")))
    _, frames = await chat(client, body())
    assert masks(frames)[-2] == "done" and text_of(frames) == "ok"
    assert frames[-1][1]["error"]["details"][0]["debug"]["reason"] == "REASON_X"


async def test_fault_truncate(aiohttp_client):
    client, state = await start(aiohttp_client)
    state.replies.append(Reply(text="abcdefgh", chunk=2, fault=Fault("truncate", after=1)))
    async with client.post(CHAT, data=frame(body()), headers=auth()) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert state.active_streams["user-1"] == 0 and state.last_reply.text == "ab"


async def test_fault_split_coalesce_huge(aiohttp_client):
    client, state = await start(aiohttp_client)
    for fault in (Fault("split"), Fault("split", size=7), Fault("coalesce")):
        state.replies.append(Reply(fault=fault))
        async with client.post(CHAT, data=frame(body("\u4e2d")), headers=auth()) as resp:
            pieces = [chunk async for chunk, _ in resp.content.iter_chunks()]
        frames = unframe(b"".join(pieces))
        assert text_of(frames) == default_text(1, "\u4e2d") and frames[-1] == (2, {})
        if fault.kind == "coalesce":
            assert len(pieces) <= 2
        else:
            assert len(pieces) > 50  # frames and UTF-8 sequences cut across reads
    state.replies.append(Reply(fault=Fault("huge", size=300_000)))
    _, frames = await chat(client, body())
    texts = [f for _, f in frames if f.get("mask", "").startswith("block.text")]
    assert len(texts) == 1 and len(texts[0]["block"]["text"]["content"].encode()) == 300_000
    assert masks(frames)[-2] == "done"


async def test_frames_per_write_batches_frames_and_flushes_before_a_wait(aiohttp_client):
    client, state = await start(aiohttp_client, frames_per_write=8)
    async with client.post(CHAT, data=frame(body("batched")), headers=auth()) as resp:
        pieces = [chunk async for chunk, _ in resp.content.iter_chunks()]
    frames = unframe(b"".join(pieces))
    assert text_of(frames) == default_text(1, "batched") and frames[-1] == (2, {})
    assert len(pieces) <= len(frames) // 8 + 1
    # With a pause after each frame, each leaves before its pause: none waits for 8 more.
    state.chunk_delay = 0.03
    state.replies.append(Reply(text="abcdefgh", chunk=1))
    async with client.post(CHAT, data=frame(body()), headers=auth()) as resp:
        pieces = [chunk async for chunk, _ in resp.content.iter_chunks()]
    assert text_of(unframe(b"".join(pieces))) == "abcdefgh"
    assert len(pieces) >= 8


async def test_fault_silence_and_pause_heartbeats(aiohttp_client):
    client, state = await start(aiohttp_client, heartbeat_interval=0.05)
    state.replies.append(Reply(text="x", fault=Fault("silence", seconds=0.2, heartbeats=True)))
    _, frames = await chat(client, body())
    assert masks(frames)[4:].count("heartbeat") >= 2 and text_of(frames) == "x"
    state.replies.append(Reply(text="x", fault=Fault("silence", seconds=0.1)))
    _, frames = await chat(client, body())
    assert masks(frames).count("heartbeat") == 1
    state.replies.append(Reply(text="x", pause=0.2))
    _, frames = await chat(client, body())
    assert masks(frames)[4:].count("heartbeat") >= 2


async def test_fault_moderation(aiohttp_client):
    client, state = await start(aiohttp_client)
    state.replies.append(Reply(text="abcdef", chunk=2, fault=Fault("moderation", after=1)))
    _, frames = await chat(client, body())
    assert text_of(frames) == "ab"
    assert frames[-3][1]["message"]["status"] == "MESSAGE_STATUS_BLOCKED"
    assert masks(frames)[-2] == "done" and frames[-1] == (2, {})


async def test_concurrency_and_cancel(aiohttp_client):
    client, state = await start(aiohttp_client)
    state.replies.extend([Reply(text="slow", pause=0.3), Reply(text="later")])
    first = asyncio.create_task(chat(client, body()))
    await asyncio.sleep(0.1)
    _, frames = await chat(client, body())
    assert frames[0][1]["error"]["code"] == "failed_precondition"
    assert frames[-1][1]["error"]["details"][0]["debug"]["reason"] == "REASON_CHAT_STREAM_PUSHING"
    assert text_of((await first)[1]) == "slow" and state.max_active["user-1"] == 1
    assert state.replies[0].text == "later"
    state.reject_concurrent = False
    state.replies.clear()
    state.replies.extend([Reply(pause=0.2), Reply(pause=0.2)])
    await asyncio.gather(chat(client, body()), chat(client, body()))
    assert state.max_active["user-1"] == 2 and state.active_streams["user-1"] == 0
    state.replies.append(Reply(text="never", pause=5))
    task = asyncio.create_task(chat(client, body()))
    await asyncio.sleep(0.1)
    chat_id = next(reversed(state.chats))
    assert await unary(client, GW + "CancelChat", {"chat_id": chat_id, "message_id": "m"}) == (200, {})
    _, frames = await asyncio.wait_for(task, 2)
    assert frames[-3][1]["message"]["status"] == "MESSAGE_STATUS_CANCELLED"
    assert masks(frames)[-2] == "done" and state.cancelled == [{"chat_id": chat_id, "message_id": "m"}]


async def test_refresh_rotation(aiohttp_client):
    client, state = await start(aiohttp_client)
    rt = state.issue_refresh_token("user-9")
    async with client.post(REFRESH, json={"refresh_token": rt}) as resp:
        assert resp.status == 200
        tokens = await resp.json()
    status, me = await unary(client, USER, token=tokens["accessToken"])
    assert status == 200 and me["user"]["id"] == "user-9"
    async with client.post(REFRESH, json={"refreshToken": rt}) as resp:
        assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"
    async with client.post(REFRESH, json={"refreshToken": tokens["refreshToken"]}) as resp:
        assert resp.status == 200
    state.refresh_gateway_refuses = True
    async with client.post(REFRESH, json={"refresh_token": "x"}) as resp:
        assert resp.status == 404
    assert state.refresh_calls == 4
    state.rt_grace = 10
    rt = state.issue_refresh_token("user-9")
    for _ in range(2):
        async with client.get(LEGACY, headers=auth(rt)) as resp:
            assert resp.status == 200 and set(await resp.json()) == {"access_token", "refresh_token"}
    state.rt_used[rt] = 0  # grace window over
    async with client.get(LEGACY, headers=auth(rt)) as resp:
        assert resp.status == 401 and (await resp.json())["error_type"] == "auth.token.invalid"


async def test_upload_and_parse_progress(aiohttp_client):
    client, state = await start(aiohttp_client, parse_steps=2)
    state.parse_fail.add("bad.txt")
    uploaded = {}
    for name, ctype in (("pic.png", "image/png"), ("bad.txt", "text/plain")):
        form = aiohttp.FormData()
        form.add_field("file", b"\x89PNG data", filename=name, content_type=ctype)
        async with client.post(UPLOAD, data=form, headers=auth()) as resp:
            assert resp.status == 200
            uploaded[name] = (await resp.json())["file"]
    meta = uploaded["pic.png"]["meta"]
    assert meta["type"] == "FILE_TYPE_IMAGE" and meta["sizeBytes"] == "9" and meta["ext"] == "png"
    assert uploaded["bad.txt"]["meta"]["type"] == "FILE_TYPE_DOCUMENT"
    ids = [uploaded["pic.png"]["id"], uploaded["bad.txt"]["id"]]
    seen = []
    for _ in range(3):
        _, result = await unary(client, PROGRESS, {"file_ids": ids})
        seen.append([p["status"][len("PROCESS_STATUS_"):] for p in result["progresses"]])
    assert seen == [["PROCESSING"] * 2, ["PROCESSING"] * 2, ["SUCCESS", "FAILED"]]
    sign_url = uploaded["pic.png"]["blob"]["signUrl"]
    async with client.get(sign_url[sign_url.index("/apiv2-files"):]) as resp:
        assert resp.status == 200 and await resp.read() == b"\x89PNG data"
    _, frames = await chat(client, body("see file", files=[ids[0]]))
    assert "chat.files" in masks(frames) and frames[-1] == (2, {})
    _, frames = await chat(client, body("see file", files=["unknown"]))
    assert frames[-1][1]["error"]["code"] == "invalid_argument"


async def test_catalog_models_fail_and_routing(aiohttp_client):
    client, state = await start(aiohttp_client, call_delay=0.05)
    _, models = await unary(client, MODELS)
    keys = [m["key"] for m in models["availableModels"]]
    assert keys == ["k2d6", "k2d6-thinking", "k2d6-agent", "k2d6-agent-ultra"]
    state.catalog = "2026-09"
    _, models = await unary(client, MODELS)
    assert models["defaultScenario"] == {"scenario": "SCENARIO_CHAT", "model": "k2d6-chat"}
    assert "k3-agent-swarm" in [m["key"] for m in models["availableModels"]]
    state.models_fail = True
    status, err = await unary(client, MODELS)
    assert status == 503 and err["code"] == "unavailable"
    status, err = await unary(client, "/apiv2/kimi.gateway.chat.v1.ChatService/Nope")
    assert status == 404 and err["code"] == "not_found"
    async with client.get(MODELS) as resp:
        assert resp.status == 405
    sub_path = "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscription"
    _, sub = await unary(client, sub_path)
    assert sub["subscription"]["userId"] == "user-1"
    times = [c.time for c in state.calls]
    assert all(b - a >= 0.05 for a, b in zip(times, times[1:]))
    assert state.calls[0].path == MODELS and state.calls[0].method == "POST"
