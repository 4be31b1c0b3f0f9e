"""The Anthropic Messages API end to end: the official anthropic SDK (2.x: Bearer) and raw HTTP
in the 1.x / Claude Code style (x-api-key, anthropic-version 2023-06-01, ?beta=true) ->
gateway -> emulator. Every raw stream is checked against Anthropic's grammar."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest

from kimi.emulator import DEFAULT_THINK, Fault, Reply, mint_access_token

from tests.anthropic_sse import blocks, check_stream

HI = [{"role": "user", "content": "Say hello"}]
WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
CALL = '<tool_call name="get_weather">\n{"city": "Paris"}\n</tool_call>'
OLD_STYLE = {"anthropic-version": "2023-06-01",
             "anthropic-beta": "claude-code-20250219,no-such-beta-2099-01-01"}


def client(gw, key: str = "unused") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=key, max_retries=0)


def prompts(emu) -> list[str]:
    return ["".join((b.get("text") or {}).get("content", "") for b in r["message"]["blocks"])
            for r in emu.state.chat_requests]


def chat_ids(emu) -> list:
    return [r.get("chat_id") or r.get("chatId") for r in emu.state.chat_requests]


async def raw_post(gw, body: dict, path: str = "/v1/messages?beta=true", headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + path, json=body, headers=headers or {}) as resp:
            return resp.status, dict(resp.headers), (await resp.read()).decode()


async def test_non_stream_text_echoes_the_requested_model(gw, emu):
    emu.state.replies.append(Reply(text="Hello \u4e16\u754c"))
    m = await client(gw).messages.create(model="claude-sonnet-4-5-20250929", max_tokens=1000,
                                         messages=HI)
    assert m.model == "claude-sonnet-4-5-20250929" and m.id.startswith("msg_")
    assert [b.type for b in m.content] == ["text"] and m.content[0].text == "Hello \u4e16\u754c"
    assert m.stop_reason == "end_turn" and m.stop_sequence is None
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    assert m.usage.cache_read_input_tokens == 0


async def test_stream_with_thinking_builds_thinking_then_text(gw, emu):
    emu.state.replies.append(Reply(text="The answer is 4.", think="2 and 2 make 4", chunk=3))
    async with client(gw).messages.stream(model="claude-opus-5-5", max_tokens=32000,
                                          thinking={"type": "enabled", "budget_tokens": 2048},
                                          messages=HI) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "2 and 2 make 4" and final.content[0].signature
    assert final.content[1].text == "The answer is 4."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


async def test_thinking_is_hidden_unless_the_request_enables_it(gw, emu):
    emu.state.replies.append(Reply(text="Just text.", think="hidden thoughts"))
    status, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "max_tokens": 100,
                                         "stream": True, "messages": HI})
    assert status == 200
    assert [b["type"] for b in blocks(check_stream(raw))] == ["text"]
    assert "hidden thoughts" not in raw


async def test_hidden_thinking_does_not_use_up_max_tokens(gw, emu):
    """claude-sonnet runs on Kimi's thinking model; without `thinking` in the request the
    client never sees that reasoning, so only the answer counts against max_tokens."""
    emu.state.replies.append(Reply(text="one two three four five six seven eight nine ten",
                                   think="a long hidden chain of thought " * 20))
    msg = await client(gw).messages.create(model="claude-sonnet-4-5", max_tokens=5,
                                           messages=HI)
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text.startswith("one two") and msg.stop_reason == "max_tokens"


async def test_raw_stream_of_the_old_header_style_follows_the_grammar(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-gw-1",)})
    emu.state.replies.append(Reply(text="Checking. " + CALL, think=DEFAULT_THINK, chunk=5))
    body = {"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 31999}, "tools": [WEATHER],
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "temperature": 1, "some_future_field": {"x": 1}}
    status, headers, raw = await raw_post(gw, body, headers={"x-api-key": "sk-gw-1", **OLD_STYLE})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    records = check_stream(raw)
    built = blocks(records)
    assert [b["type"] for b in built] == ["thinking", "text", "tool_use"]
    assert built[1]["text"] == "Checking. "
    assert built[2]["name"] == "get_weather" and built[2]["input"] == {"city": "Paris"}
    assert records[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert records[1][0] == "ping"
    status, _, raw = await raw_post(gw, body, headers={"x-api-key": "wrong", **OLD_STYLE})
    assert status == 401 and '"authentication_error"' in raw


async def test_pings_keep_the_stream_alive_after_message_start(start_gateway, emu, token):
    emu.state.heartbeat_interval = 0.05
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"keepalive_seconds": 0.1})
    emu.state.replies.append(Reply(text="late", pause=0.6))
    _, _, raw = await raw_post(gw, {"model": "claude-haiku-4-5", "max_tokens": 50,
                                    "stream": True, "messages": HI})
    records = check_stream(raw)
    first_block = next(i for i, r in enumerate(records) if r[0] == "content_block_start")
    assert [r[0] for r in records[1:first_block]].count("ping") >= 3


async def test_tool_use_round_trip_continues_the_same_kimi_chat(gw, emu):
    c = client(gw)
    emu.state.replies.append(Reply(text="Let me check. " + CALL))
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    m = await c.messages.create(model="claude-sonnet-4-5", max_tokens=1024, tools=[WEATHER],
                                messages=ask)
    assert m.stop_reason == "tool_use"
    text, call = m.content
    assert text.text == "Let me check. " and call.type == "tool_use"
    assert call.id.startswith("toolu_") and call.input == {"city": "Paris"}
    emu.state.replies.append(Reply(text="It is sunny in Paris."))
    history = ask + [{"role": "assistant", "content": [b.model_dump() for b in m.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                   "content": "sunny, 24 C ZEBRA-RESULT"}]}]
    async with c.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, tools=[WEATHER],
                                 messages=history) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "It is sunny in Paris." and final.stop_reason == "end_turn"
    first, second = prompts(emu)
    assert "get_weather" in first and "ZEBRA-RESULT" in second
    assert "What is the weather" not in second and "Current weather for a city" not in second
    assert chat_ids(emu)[1] is not None and chat_ids(emu)[1] == emu.state.last_reply.chat_id


async def test_tool_result_error_blocks_and_tool_choice(gw, emu):
    emu.state.replies.append(Reply(text=CALL))
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": [
                   {"type": "thinking", "thinking": "SECRET-THOUGHT", "signature": "abc"},
                   {"type": "redacted_thinking", "data": "opaque"},
                   {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                    "input": {"city": "Oslo"}}]},
               {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                    "content": [{"type": "text", "text": "city not found ZEBRA-ERR"}]},
                   {"type": "text", "text": "try Paris"}]}]
    m = await client(gw).messages.create(
        model="claude-sonnet-4-5", max_tokens=500, tools=[WEATHER], messages=history,
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True})
    assert m.stop_reason == "tool_use" and m.content[-1].input == {"city": "Paris"}
    (sent,) = prompts(emu)
    assert "ZEBRA-ERR" in sent and 'is_error="true"' in sent and "try Paris" in sent
    assert "SECRET-THOUGHT" not in sent and "opaque" not in sent


async def test_stop_sequence_is_reported(gw, emu):
    emu.state.replies.append(Reply(text="one two STOP three"))
    m = await client(gw).messages.create(model="claude-haiku-4-5", max_tokens=100, messages=HI,
                                         stop_sequences=["STOP"])
    assert m.content[0].text == "one two " and m.stop_reason == "stop_sequence"
    assert m.stop_sequence == "STOP"


async def test_moderation_is_a_refusal(gw, emu):
    emu.state.replies.append(Reply(text="Some words here", fault=Fault("moderation", after=1)))
    _, _, raw = await raw_post(gw, {"model": "claude-haiku-4-5", "max_tokens": 100,
                                    "stream": True, "messages": HI})
    assert check_stream(raw)[-2][1]["delta"]["stop_reason"] == "refusal"


async def test_count_tokens_matches_the_reported_input_tokens(gw, emu):
    c = client(gw)
    kwargs = dict(model="claude-sonnet-4-5", system="You are terse.", tools=[WEATHER],
                  messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    counted = await c.messages.count_tokens(**kwargs)
    emu.state.replies.append(Reply(text="Sunny."))
    m = await c.messages.create(max_tokens=100, **kwargs)
    assert counted.input_tokens > 20 and counted.input_tokens == m.usage.input_tokens


async def test_cache_prewarm_and_quota_probe_need_no_upstream(gw, emu):
    m = await client(gw).messages.create(model="claude-haiku-4-5", max_tokens=1, messages=HI)
    assert m.stop_reason == "max_tokens" and m.content[0].text == ""
    _, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "max_tokens": 0,
                                    "stream": True, "messages": HI})
    assert check_stream(raw)[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert emu.state.chat_requests == []


async def test_models_answer_in_the_shape_of_the_client(gw):
    listed = [m async for m in client(gw).models.list()]
    assert listed[0].id.startswith("claude") and listed[0].type == "model"
    assert {"claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"} <= {m.id for m in listed}
    one = await client(gw).models.retrieve("claude-sonnet-4-5-20250929")
    assert one.id == "claude-sonnet-4-5-20250929" and "kimi-thinking" in one.display_name
    with pytest.raises(anthropic.NotFoundError):
        await client(gw).models.retrieve("gpt-nothing")
    oa = await gw.client().models.list()
    assert oa.object == "list" and oa.data[0].id == "kimi"
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/models?limit=1000", headers=OLD_STYLE) as resp:
            body = await resp.json()
        assert body["has_more"] is False and body["first_id"] == "claude-opus-5-5"
        async with s.get(gw.url + "/anthropic/v1/models") as resp:
            assert (await resp.json())["data"][0]["type"] == "model"
        async with s.get(gw.url + "/v1/models/nothing-here") as resp:
            assert resp.status == 404 and "error" in await resp.json()


async def test_errors_map_to_the_sdk_exception_classes(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-gw-1",)})
    with pytest.raises(anthropic.AuthenticationError) as e:
        await client(gw, "sk-wrong").messages.create(model="claude-sonnet-4-5", max_tokens=10,
                                                     messages=HI)
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"
    c = client(gw, "sk-gw-1")
    with pytest.raises(anthropic.BadRequestError) as e:
        await c.messages.create(model="claude-sonnet-4-5", max_tokens=-1, messages=HI)
    assert "max_tokens" in e.value.message
    with pytest.raises(anthropic.BadRequestError) as e:
        await c.messages.create(model="claude-sonnet-4-5", max_tokens=10,
                                messages=[{"role": "robot", "content": "x"}])
    assert "messages.0.role" in e.value.message
    status, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "messages": HI},
                                    headers={"x-api-key": "sk-gw-1"})
    assert status == 400 and '"invalid_request_error"' in raw and "max_tokens" in raw
    emu.state.replies.append(Reply(fault=Fault("http", status=429, code="resource_exhausted",
                                               retry_after=7)))
    with pytest.raises(anthropic.RateLimitError) as e:
        await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    assert e.value.response.headers["retry-after"] == "7"
    assert e.value.body["error"]["type"] == "rate_limit_error"


async def test_upstream_failure_after_the_first_byte_is_an_error_event(gw, emu):
    emu.state.replies.append(Reply(text="Alpha beta gamma delta", chunk=2,
                                   fault=Fault("error", after=3, code="internal", message="broke",
                                               reason="REASON_UNKNOWN")))
    with pytest.raises(anthropic.APIStatusError) as e:
        async with client(gw).messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                              messages=HI) as stream:
            async for _ in stream:
                pass
    assert "broke" in str(e.value)
    emu.state.replies.append(Reply(text="Alpha beta gamma delta", chunk=2,
                                   fault=Fault("error", after=3, code="internal", message="broke",
                                               reason="REASON_UNKNOWN")))
    _, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "max_tokens": 100,
                                    "stream": True, "messages": HI})
    records = check_stream(raw, error=True)
    assert records[-1][1]["error"]["type"] == "api_error"


async def test_other_paths_and_prefixes_are_served(gw, emu):
    for path in ("/messages", "/anthropic/v1/messages?beta=true"):
        emu.state.replies.append(Reply(text="ok"))
        status, _, raw = await raw_post(gw, {"model": "claude-haiku-4-5", "max_tokens": 10,
                                             "messages": HI}, path=path)
        assert status == 200 and '"type":"message"' in raw
    status, _, raw = await raw_post(gw, {"model": "x", "messages": HI},
                                    path="/anthropic/v1/messages/count_tokens")
    assert status == 200 and '"input_tokens"' in raw
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/messages") as resp:
            body = await resp.json()
    assert resp.status == 405 and body["type"] == "error"


async def test_pass_through_kimi_token_as_x_api_key(start_gateway, emu):
    gw = await start_gateway()
    emu.state.replies.append(Reply(text="via my own account"))
    status, _, raw = await raw_post(gw, {"model": "claude-haiku-4-5", "max_tokens": 10,
                                         "messages": HI},
                                    headers={"x-api-key": mint_access_token("user-x"), **OLD_STYLE})
    assert status == 200 and "via my own account" in raw


async def test_openai_routes_keep_their_error_shape(gw):
    with pytest.raises(openai.BadRequestError):
        await gw.client().chat.completions.create(model="kimi", messages=[])
    status, _, raw = await raw_post(gw, {"model": "kimi", "messages": []},
                                    path="/v1/chat/completions", headers=OLD_STYLE)
    assert status == 400 and '"param":"messages"' in raw and '"type":"error"' not in raw
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/models/nothing-here", headers=OLD_STYLE) as resp:
            assert (await resp.json())["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("model,thinking,expected", [
    ("claude-opus-4-8", None, True), ("claude-sonnet-4-5-20250929", None, True),
    ("claude-haiku-4-5-20251001", None, False), ("claude-mythos-5", None, True),
    ("claude-haiku-5-5", {"type": "enabled", "budget_tokens": 1024}, True),
    ("claude-haiku-5-5", {"type": "adaptive"}, True),
    ("claude-sonnet-5-5", {"type": "disabled"}, False), ("kimi", None, False)])
async def test_claude_names_map_to_kimi_models(gw, emu, model, thinking, expected):
    emu.state.replies.append(Reply(text="ok"))
    body = {"model": model, "max_tokens": 100, "messages": HI}
    if thinking:
        body["thinking"] = thinking
    status, _, raw = await raw_post(gw, body)
    assert status == 200 and f'"model":"{model}"' in raw
    assert emu.state.chat_requests[-1]["options"]["thinking"] is expected


async def test_the_alias_table_is_configurable(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, anthropic={"haiku": "kimi-thinking"})
    emu.state.replies.append(Reply(text="ok"))
    await client(gw).messages.create(model="claude-haiku-5-5", max_tokens=100, messages=HI)
    assert emu.state.chat_requests[-1]["options"]["thinking"] is True


async def test_kimi_free_tier_overload_is_529_overloaded(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("error", after=0)))
    with pytest.raises(anthropic.OverloadedError) as e:
        await client(gw).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    assert e.value.body["error"]["type"] == "overloaded_error"
    assert int(e.value.response.headers["retry-after"]) > 0


async def test_an_overload_mid_stream_is_an_overloaded_error_event(gw, emu):
    emu.state.replies.append(Reply(text="Alpha beta gamma delta", chunk=2,
                                   fault=Fault("error", after=3)))
    _, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "max_tokens": 100,
                                    "stream": True, "messages": HI})
    assert check_stream(raw, error=True)[-1][1]["error"]["type"] == "overloaded_error"


async def test_kimi_context_overflow_reads_as_prompt_too_long(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("error", after=0, code="invalid_argument",
                                               reason="REASON_TOKEN_LENGTH_TOO_LONG")))
    with pytest.raises(anthropic.BadRequestError) as e:
        await client(gw).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    assert e.value.body["error"]["message"].startswith("prompt is too long")


async def test_the_web_search_server_tool_turns_on_kimi_search(gw, emu):
    emu.state.replies.append(Reply(citations="2026", chunk=3))
    ask = [{"role": "user", "content": "search the latest news"}]
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    async with client(gw).messages.stream(model="claude-sonnet-4-5", max_tokens=1000,
                                          tools=tools, messages=ask) as stream:
        final = await stream.get_final_message()
    sent = emu.state.chat_requests[-1]
    assert any("SEARCH" in str(t) for t in sent.get("tools") or sent["options"].get("tools", []))
    text, searched, found = final.content       # streamed: the search after the text
    assert (searched.type, searched.name, searched.input) == (
        "server_tool_use", "web_search", {"query": "search the latest news"})
    assert found.type == "web_search_tool_result" and found.tool_use_id == searched.id
    assert "https://example.com/r1" in [r.url for r in found.content]
    assert "[1]" in text.text and "<tool_call" not in prompts(emu)[0]
    assert {c.url for c in text.citations} >= {"https://example.com/r1"}
    _, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "max_tokens": 1000,
                                    "stream": True, "tools": tools, "messages": ask})
    check_stream(raw)
    emu.state.replies.append(Reply(citations="2026"))
    whole = await client(gw).messages.create(model="claude-sonnet-4-5", max_tokens=1000,
                                             tools=tools, messages=ask)
    assert [b.type for b in whole.content] == ["server_tool_use", "web_search_tool_result",
                                               "text"]
    assert [r.url for r in whole.content[1].content] == [r.url for r in found.content]


async def test_claude_codes_web_search_request_names_the_server_tool(gw, emu):
    """Claude Code's WebSearch tool asks with the web_search server tool and tool_choice
    naming it: that is search (not a contract call), answered with the search blocks."""
    emu.state.replies.append(Reply(citations="2026"))
    m = await client(gw).messages.create(
        model="claude-sonnet-4-5", max_tokens=1000,
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
        tool_choice={"type": "tool", "name": "web_search"}, messages=[
            {"role": "user", "content": "Perform a web search for the query: kimi news"}])
    assert [b.type for b in m.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert m.content[0].input == {"query": "kimi news"}
    assert "<tool_call" not in prompts(emu)[0]


async def test_search_by_model_name_alone_adds_no_search_blocks(gw, emu):
    """Only a request with the web_search server tool gets server_tool_use blocks."""
    emu.state.replies.append(Reply(citations="2026"))
    m = await client(gw).messages.create(model="kimi-search", max_tokens=1000, messages=[
        {"role": "user", "content": "search the latest news"}])
    assert [b.type for b in m.content] == ["text"]


@pytest.mark.parametrize("choice,reply,expected", [
    ({"type": "none"}, "Here is text only.", ["text"]),
    ({"type": "any"}, CALL, ["tool_use"]),
    ({"type": "auto", "disable_parallel_tool_use": True}, CALL + "\n" + CALL.replace("Paris", "Rome"),
     ["tool_use"]),
])
async def test_tool_choice_modes(gw, emu, choice, reply, expected):
    emu.state.replies.append(Reply(text=reply))
    m = await client(gw).messages.create(model="claude-sonnet-4-5", max_tokens=500,
                                         tools=[WEATHER], tool_choice=choice,
                                         messages=[{"role": "user", "content": "Weather?"}])
    assert [b.type for b in m.content] == expected
    assert m.stop_reason == ("tool_use" if "tool_use" in expected else "end_turn")
    if choice["type"] == "none":
        assert "<tool_call" not in prompts(emu)[0].split("[CONVERSATION]")[0]


@pytest.mark.parametrize("chunk", [1, 3, 64])
async def test_the_same_blocks_whatever_the_upstream_chunking(gw, emu, chunk):
    emu.state.replies.append(Reply(text="Checking <b>now</b>. " + CALL, think="a < b", chunk=chunk))
    _, _, raw = await raw_post(gw, {"model": "claude-sonnet-4-5", "max_tokens": 1000,
                                    "stream": True, "tools": [WEATHER],
                                    "thinking": {"type": "adaptive"},
                                    "messages": [{"role": "user", "content": "Weather?"}]})
    built = blocks(check_stream(raw))
    for b in built:
        b.pop("id", None)
        b.pop("signature", None)
    assert built == [{"type": "thinking", "thinking": "a < b"},
                     {"type": "text", "text": "Checking <b>now</b>. "},
                     {"type": "tool_use", "name": "get_weather", "input": {"city": "Paris"}}]
