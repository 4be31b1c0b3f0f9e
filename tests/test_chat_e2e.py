"""The walking skeleton end to end: openai SDK -> gateway -> emulator, and back."""

import asyncio

import aiohttp
import openai
import orjson
import pytest

from kimi.emulator import DEFAULT_THINK, Fault, Reply, default_text

HELLO = [{"role": "user", "content": "Hello \u00e9\u4e2d\U0001F389"}]


async def test_non_stream_answer_is_the_emulators_text(gw, emu):
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == default_text(1, HELLO[0]["content"])
    assert r.choices[0].message.content == emu.state.last_reply.text
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


async def test_stream_pieces_add_up_exactly(gw, emu):
    stream = await gw.client().chat.completions.create(model="kimi", messages=HELLO, stream=True)
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == "kimi" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == emu.state.last_reply.text == default_text(1, HELLO[0]["content"])
    assert len(chunks) > 5, "the answer must arrive in pieces, not in one burst"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_wire_format_and_nginx_headers(gw):
    body = {"model": "kimi", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert resp.headers["X-Accel-Buffering"] == "no"
            assert "no-cache" in resp.headers["Cache-Control"]
            raw = (await resp.read()).decode()
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


@pytest.mark.parametrize("model", ["kimi-thinking", "kimi-k2-thinking"])
async def test_thinking_goes_to_reasoning_content(gw, emu, model):
    r = await gw.client().chat.completions.create(model=model, messages=HELLO)
    msg = r.choices[0].message
    assert msg.content == default_text(1, HELLO[0]["content"])
    assert msg.model_extra["reasoning_content"] == DEFAULT_THINK
    assert emu.state.chat_requests[-1]["options"]["thinking"] is True

    stream = await gw.client().chat.completions.create(model=model, messages=HELLO, stream=True)
    reasoning, content = "", ""
    async for c in stream:
        d = c.choices[0].delta if c.choices else None
        if d is not None:
            reasoning += (d.model_extra or {}).get("reasoning_content") or ""
            content += d.content or ""
    assert reasoning == DEFAULT_THINK and content == msg.content


async def test_plain_model_has_no_reasoning(gw, emu):
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert "reasoning_content" not in (r.choices[0].message.model_extra or {})
    assert emu.state.chat_requests[-1]["options"]["thinking"] is False


@pytest.mark.parametrize("model,extra,search", [
    ("kimi", {}, False), ("kimi-search", {}, True), ("kimi", {"use_search": True}, True),
    ("kimi-silent", {}, True), ("kimi-k2-thinking-search", {}, True)])
async def test_search_tool_is_declared(gw, emu, model, extra, search):
    await gw.client().chat.completions.create(model=model, messages=HELLO, extra_body=extra)
    tools = emu.state.chat_requests[-1].get("tools") or []
    assert any(t.get("type") == "TOOL_TYPE_SEARCH" for t in tools) is search


async def test_agent_model_maps_to_ok_computer(gw, emu):
    await gw.client().chat.completions.create(model="kimi-agent", messages=HELLO)
    req = emu.state.chat_requests[-1]
    assert req["scenario"] == "SCENARIO_OK_COMPUTER"
    assert req["kimiplus_id"] == "ok-computer"


async def test_history_is_folded_into_one_prompt(gw, emu):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": "And 3+3?"}]
    r = await gw.client().chat.completions.create(model="kimi", messages=messages,
                                                  extra_body={"conversation_id": "none"})
    prompt = "system: Be brief.\n\nuser: What is 2+2?\n\nassistant: 4\n\nuser: And 3+3?"
    sent = emu.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"]
    assert sent == prompt
    assert r.choices[0].message.content == default_text(1, prompt)
    assert "chat_id" not in emu.state.chat_requests[-1]


async def test_chat_is_deleted_after_success_when_continuation_is_off(start_gateway, token, emu):
    gw = await start_gateway(kimi={"tokens": (token,)}, store={"auto_continue_minutes": 0})
    await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    await gw.service.drain()
    assert emu.state.deleted == [emu.state.last_reply.chat_id]


async def test_kept_chat_is_deleted_when_its_time_is_up(gw, emu):
    await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    await gw.service.drain()
    assert emu.state.deleted == []
    assert await gw.service.purge_expired() == 0
    repo = gw.service.conversations.repo
    await repo.store.execute("UPDATE conversations SET updated_at = updated_at - 3600, "
                             "expires_at = expires_at - 3600")
    assert await gw.service.purge_expired() == 1
    assert emu.state.deleted == [emu.state.last_reply.chat_id]


async def test_chat_is_deleted_after_an_upstream_error(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("error", after=2, code="internal")))
    with pytest.raises(openai.APIError):
        stream = await gw.client().chat.completions.create(model="kimi", messages=HELLO, stream=True)
        async for _ in stream:
            pass
    await gw.service.drain()
    assert len(emu.state.deleted) == 1 and emu.state.deleted[0] in emu.state.chats


async def test_client_disconnect_cancels_and_deletes_within_a_second(gw, emu):
    emu.state.chunk_delay = 0.05
    emu.state.replies.append(Reply(text="x" * 4000, chunk=1))
    body = {"model": "kimi", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body) as resp:
            await resp.content.readline()
            await resp.content.readline()
        # leaving the block closes the connection mid-stream
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while not emu.state.deleted and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert emu.state.deleted, "the chat was not deleted within a second of the disconnect"
    assert emu.state.cancelled and emu.state.cancelled[0]["chat_id"] == emu.state.deleted[0]
    assert gw.service.pool.accounts[0].in_flight == 0


@pytest.mark.parametrize("fault", [Fault("split", size=1), Fault("split", size=7), Fault("coalesce")])
async def test_read_boundaries_do_not_change_the_text(gw, emu, fault):
    text = "Grüße \u4e2d\u6587 \U0001F389\U0001F680 " * 20
    emu.state.replies.append(Reply(text=text, fault=fault))
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content == text


async def test_a_frame_of_several_megabytes(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("huge", size=3 * 1024 * 1024)))
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content == emu.state.last_reply.text
    assert len(r.choices[0].message.content.encode()) >= 3 * 1024 * 1024


async def test_done_then_error_is_not_swallowed(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("done_then_error", code="internal", message="late failure")))
    with pytest.raises(openai.APIStatusError) as e:
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert e.value.status_code == 502
    assert "late failure" in e.value.message


async def stream_data(gw) -> list[str]:
    """The `data:` payloads of a streamed answer to HELLO, read raw (no SDK parsing)."""
    body = {"model": "kimi", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            raw = (await resp.read()).decode()
    return [e[len("data: "):] for e in raw.split("\n\n") if e.startswith("data: ")]


async def test_error_after_content_is_sent_in_band_then_done(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("error", after=3, code="internal", message="broke")))
    events = await stream_data(gw)
    assert events[-1] == "[DONE]"
    err = orjson.loads(events[-2])["error"]
    assert "broke" in err["message"] and err["type"] == "upstream_error"
    assert any('"content"' in e for e in events[:-2])


async def test_a_bad_frame_keeps_the_good_frames_read_with_it(gw, emu):
    """Kimi sends text frames and then a frame that is not JSON, all in one read: the text
    reaches the client, then the error in band."""
    emu.state.replies.append(Reply(text="Alpha beta gamma.", fault=Fault("garbage", after=3)))
    events = await stream_data(gw)
    assert events[-1] == "[DONE]"
    assert orjson.loads(events[-2])["error"]["code"] == "upstream_bad_frame"
    text = "".join(orjson.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-2] if orjson.loads(e).get("choices"))
    assert text == "Alpha beta g"       # the three text events of 4 code points before it


async def test_truncated_stream_is_an_error_not_a_short_answer(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("truncate", after=2)))
    with pytest.raises(openai.APIStatusError) as e:
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert e.value.status_code == 502


@pytest.mark.parametrize("style", ["http", "stream"])
async def test_expired_token_is_401_both_ways(start_gateway, emu, style):
    from kimi.emulator import mint_access_token
    emu.state.auth_error_style = style
    gw = await start_gateway()
    expired = mint_access_token("user-9", ttl=-10)
    with pytest.raises(openai.AuthenticationError):
        await gw.client(api_key=expired).chat.completions.create(model="kimi", messages=HELLO)


async def test_pass_through_tokens(start_gateway, emu, token):
    gw = await start_gateway()
    r = await gw.client(api_key=f"{token},{token}").chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content == default_text(1, HELLO[0]["content"])
    assert emu.state.calls[0].headers["Authorization"] == f"Bearer {token}"


async def test_upstream_429_keeps_its_status_and_retry_after(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("http", status=429, code="resource_exhausted", retry_after=7)))
    with pytest.raises(openai.RateLimitError) as e:
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert e.value.response.headers["Retry-After"] == "7"


async def test_in_stream_overload_before_content_is_429(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("error", after=0)))
    with pytest.raises(openai.RateLimitError) as e:
        await gw.client().chat.completions.create(model="kimi", messages=HELLO, stream=True)
    assert "REASON_SERVER_OVERLOADED_FOR_FREE_USER" in e.value.message


async def test_upstream_5xx_is_502_or_503(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("http", status=503, code="unavailable")))
    with pytest.raises(openai.APIStatusError) as e:
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert e.value.status_code == 503


async def test_disconnect_before_the_answer_is_logged_and_cleaned_up(gw, emu, caplog):
    emu.state.replies.append(Reply(pause=2.0))
    body = {"model": "kimi", "messages": HELLO}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as s:
        with pytest.raises(asyncio.TimeoutError):
            async with s.post(gw.url + "/v1/chat/completions", json=body) as resp:
                await resp.read()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while not emu.state.deleted and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert emu.state.deleted, "the chat of an abandoned request was not deleted"
    lines = [r.getMessage() for r in caplog.records if r.name == "kimi.access"]
    assert any("status=499" in line and "client-disconnected" in line for line in lines)


async def test_client_values_cannot_forge_log_lines(gw, caplog):
    body = {"model": "kimi\nINFO kimi.access FORGED status=200", "messages": HELLO}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body,
                          headers={"X-Request-Id": "abc def status=999"}) as resp:
            assert resp.status == 200
            assert resp.headers["X-Request-Id"] != "abc def status=999"
    lines = [r.getMessage() for r in caplog.records if r.name == "kimi.access"]
    assert lines and all("\n" not in line and "FORGED status" not in line for line in lines)
    assert not any("status=999" in line for line in lines)


async def test_a_client_that_hangs_up_after_done_is_not_a_disconnect(gw, emu, caplog):
    body = {"model": "kimi", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer unused"}) as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body) as resp:
            async for line in resp.content:
                if line.startswith(b"data: [DONE]"):
                    break
    await asyncio.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records if r.name == "kimi.access"]
    assert lines and "client-disconnected" not in lines[-1]
    # and the turn was stored: the resent history continues the same chat
    chat = emu.state.last_reply.chat_id
    history = HELLO + [{"role": "assistant", "content": emu.state.last_reply.text},
                       {"role": "user", "content": "next"}]
    r = await gw.client().chat.completions.create(model="kimi", messages=history)
    assert emu.state.chat_requests[-1].get("chat_id") == chat
    assert r.choices[0].message.content == default_text(2, "next")
