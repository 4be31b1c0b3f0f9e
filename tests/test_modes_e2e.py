"""Every Kimi mode through the official SDK: each output lands in the field a client reads."""

import asyncio
import re

import aiohttp
import openai
import orjson
import pytest

from kimi.web.keys import TOKEN_COUNTER
from kimi.emulator import DEFAULT_THINK, Fault, Reply, default_text
from kimi.emulator.stream import default_search

HELLO = [{"role": "user", "content": "Hello"}]
SEARCH = [{"role": "user", "content": "search the latest news"}]
RAW_MARKERS = re.compile("[\ue3a0-\ue3a8\U0001F6E0\U0001F3A8]")


async def stream_parts(client, **kw):
    """(content, reasoning, annotations, finish_reason, usage, chunks) of a streamed answer."""
    stream = await client.chat.completions.create(stream=True, **kw)
    content, reasoning, annotations, finish, usage, chunks = "", "", [], None, None, []
    async for c in stream:
        chunks.append(c)
        usage = c.usage or usage
        if not c.choices:
            continue
        d = c.choices[0].delta
        extra = d.model_extra or {}
        content += d.content or ""
        reasoning += extra.get("reasoning_content") or ""
        annotations += extra.get("annotations") or []
        finish = c.choices[0].finish_reason or finish
    return content, reasoning, annotations, finish, usage, chunks


# -- thinking ----------------------------------------------------------------------------

@pytest.mark.parametrize("extra,thinking", [
    ({"reasoning_effort": "high"}, True), ({"reasoning_effort": "low"}, True),
    ({"reasoning_effort": "none"}, False), ({"thinking": True}, True),
    ({"thinking": {"type": "enabled"}}, True), ({"thinking": {"type": "disabled"}}, False),
])
async def test_thinking_by_request_field(gw, emu, extra, thinking):
    model = "kimi" if thinking else "kimi-thinking"   # the field overrides the name
    r = await gw.client().chat.completions.create(model=model, messages=HELLO, extra_body=extra)
    assert emu.state.chat_requests[-1]["options"]["thinking"] is thinking
    got = (r.choices[0].message.model_extra or {}).get("reasoning_content")
    assert got == (DEFAULT_THINK if thinking else None)


async def test_bad_thinking_fields_are_400(gw):
    for extra, param in (({"reasoning_effort": "extreme"}, "reasoning_effort"),
                         ({"thinking": "yes"}, "thinking"), ({"stop": 5}, "stop"),
                         ({"max_tokens": 0}, "max_tokens"), ({"temperature": "hot"}, "temperature")):
        with pytest.raises(openai.BadRequestError) as e:
            await gw.client().chat.completions.create(model="kimi", messages=HELLO, extra_body=extra)
        assert e.value.body["param"] == param


async def test_think_tags_render_reasoning_inside_content(start_gateway, token, emu):
    gw = await start_gateway(kimi={"tokens": (token,), "think_tags": True})
    r = await gw.client().chat.completions.create(model="kimi-thinking", messages=HELLO)
    msg = r.choices[0].message
    assert msg.content == f"<think>\n{DEFAULT_THINK}\n</think>\n\n" + default_text(1, "Hello")
    assert "reasoning_content" not in (msg.model_extra or {})
    content, reasoning, *_ = await stream_parts(gw.client(), model="kimi-thinking", messages=HELLO)
    assert content == msg.content and reasoning == ""


async def test_temperature_and_top_p_are_accepted_and_ignored(gw, emu):
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO, temperature=0.2,
                                                  top_p=0.9)
    assert r.choices[0].message.content == default_text(1, "Hello")
    sent = emu.state.chat_requests[-1]
    assert "temperature" not in orjson.dumps(sent).decode()


# -- search ------------------------------------------------------------------------------

def expected_sources(results):
    lines = "".join(f"\n{i + 1}. [{r['title']}]({r['url']})" for i, r in enumerate(results))
    return "\n\n**Sources**\n" + lines


@pytest.mark.parametrize("style,names", [("e3a0", "camel"), ("2026", "camel"),
                                         ("2026", "snake")])
async def test_search_citations_become_references_and_annotations(gw, emu, style, names):
    emu.state.field_names = names       # proto field names (search_results, ref_index) too
    emu.state.replies.append(Reply(citations=style, chunk=3))
    r = await gw.client().chat.completions.create(model="kimi-search", messages=SEARCH)
    msg = r.choices[0].message
    results = default_search(SEARCH[0]["content"])
    cited = emu.state.last_reply.text
    assert RAW_MARKERS.search(cited), "the emulator must have sent raw markers"
    assert not RAW_MARKERS.search(msg.content)
    answer = default_text(1, SEARCH[0]["content"])
    # Kimi's answer with each marker `...web_search:1#k...` turned into [k+1].
    expected = re.sub(r"[\ue3a0\U0001F6E0]cite\ue3a3web_search:1#(\d+)[\ue3a8\U0001F3A8]",
                      lambda m: f"[{int(m.group(1)) + 1}]", cited)
    assert msg.content == expected + expected_sources(results)
    assert msg.content.endswith(expected_sources(results))
    body = msg.content[:-len(expected_sources(results))]
    assert re.sub(r"\[\d\]", "", body) == answer
    annotations = [a.model_dump() for a in msg.annotations]
    urls = {a["url_citation"]["url"] for a in annotations}
    assert urls == {x["url"] for x in results}
    for a in annotations:
        cite = a["url_citation"]
        assert a["type"] == "url_citation" and cite["title"]
        span = msg.content[cite["start_index"]:cite["end_index"]]
        n = [x["url"] for x in results].index(cite["url"]) + 1
        assert span == f"[{n}]" or span.startswith(f"{n}. [")

    content, _, stream_annotations, finish, _, _ = await stream_parts(
        gw.client(), model="kimi-search", messages=SEARCH)
    assert content == msg.content and finish == "stop"
    assert stream_annotations == annotations


async def test_markers_split_one_code_point_at_a_time(gw, emu):
    results = [{"title": "T1", "url": "https://one.example"},
               {"title": "T2", "url": "https://two.example"}]
    emu.state.replies.append(Reply(text="First. Second. Third.", search=results, chunk=1,
                                   citations="2026"))
    content, _, annotations, *_ = await stream_parts(gw.client(), model="kimi-search",
                                                     messages=SEARCH)
    assert content == "First.[1] Second.[2] Third.[1]" + expected_sources(results)
    assert [(a["url_citation"]["start_index"], a["url_citation"]["end_index"])
            for a in annotations] == [(6, 9), (17, 20), (27, 30)]


async def test_silent_search_has_annotations_but_no_sources_list(gw, emu):
    r = await gw.client().chat.completions.create(model="kimi-silent", messages=SEARCH)
    msg = r.choices[0].message
    assert "**Sources**" not in msg.content and not RAW_MARKERS.search(msg.content)
    assert len(msg.annotations) == 3
    assert re.sub(r"\[\d\]", "", msg.content) == default_text(1, SEARCH[0]["content"])


async def test_a_legit_emoji_is_not_a_marker(gw, emu):
    emu.state.replies.append(Reply(text="Tools \U0001F6E0 and art \U0001F3A8 stay.", chunk=1))
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content == "Tools \U0001F6E0 and art \U0001F3A8 stay."


# -- finish reasons ----------------------------------------------------------------------

async def test_moderation_stop_is_content_filter(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("moderation", after=2)))
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].finish_reason == "content_filter"
    assert "moderation" in r.choices[0].message.refusal
    assert r.choices[0].message.content == emu.state.last_reply.text
    emu.state.replies.append(Reply(fault=Fault("moderation", after=2)))
    content, _, _, finish, _, chunks = await stream_parts(gw.client(), model="kimi", messages=HELLO)
    assert finish == "content_filter" and content == emu.state.last_reply.text
    assert any(c.choices and c.choices[0].delta.refusal for c in chunks)


async def test_max_tokens_cuts_with_length_and_cancels_upstream(gw, emu):
    emu.state.replies.append(Reply(text="word " * 400, chunk=5))
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO, max_tokens=10)
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == "word " * 9 + "word"
    assert r.usage.completion_tokens == 10
    await gw.service.drain()
    assert emu.state.cancelled and emu.state.cancelled[0]["chat_id"] == emu.state.last_reply.chat_id
    # the cut answer is what the client holds: resending it continues the same chat
    assert emu.state.deleted == []
    history = HELLO + [{"role": "assistant", "content": r.choices[0].message.content},
                       {"role": "user", "content": "go on"}]
    await gw.client().chat.completions.create(model="kimi", messages=history)
    assert emu.state.chat_requests[-1].get("chat_id") == emu.state.cancelled[0]["chat_id"]


async def test_max_completion_tokens_counts_reasoning_too(gw, emu):
    content, reasoning, _, finish, usage, _ = await stream_parts(
        gw.client(), model="kimi-thinking", messages=HELLO, max_completion_tokens=3,
        stream_options={"include_usage": True})
    assert finish == "length" and content == "" and reasoning == "Let me think"
    assert usage.completion_tokens == 3
    assert usage.completion_tokens_details.reasoning_tokens == 3


@pytest.mark.parametrize("stop", ["emulator", ["zzz", "\u4e2d\u6587"], "You said"])
async def test_stop_sequence_cuts_even_across_pieces(gw, emu, stop):
    emu.state.replies.append(Reply(chunk=1))
    content, _, _, finish, _, _ = await stream_parts(gw.client(), model="kimi", messages=HELLO,
                                                     stop=stop)
    first = stop if isinstance(stop, str) else stop[1]
    assert finish == "stop"
    assert content == default_text(1, "Hello").split(first)[0]
    await gw.service.drain()
    assert emu.state.cancelled, "the upstream answer must be cancelled once the stop is seen"


# -- usage -------------------------------------------------------------------------------

async def test_usage_is_counted_with_the_tokenizer(gw, emu):
    r = await gw.client().chat.completions.create(model="kimi-thinking", messages=HELLO)
    counter = gw.app[TOKEN_COUNTER]
    answer, thought = counter.count(r.choices[0].message.content), counter.count(DEFAULT_THINK)
    assert r.usage.completion_tokens == answer + thought
    assert r.usage.completion_tokens_details.reasoning_tokens == thought
    assert r.usage.prompt_tokens == counter.count("Hello") + 6
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    *_, usage, chunks = await stream_parts(gw.client(), model="kimi-thinking", messages=HELLO,
                                           stream_options={"include_usage": True})
    assert usage.model_dump() == r.usage.model_dump()
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    *_, usage, _ = await stream_parts(gw.client(), model="kimi", messages=HELLO)
    assert usage is None


# -- models ------------------------------------------------------------------------------

async def models_by_id(gw) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/models") as resp:
            return {m["id"]: m for m in (await resp.json())["data"]}


async def wait_for_catalogue(gw, want_live: bool, emu) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        models = await models_by_id(gw)
        called = any(c.path.endswith("GetAvailableModels") for c in emu.state.calls)
        if (want_live and any(m["owned_by"] == "kimi" for m in models.values())) or \
                (not want_live and called) or loop.time() > deadline:
            return models
        await asyncio.sleep(0.02)


async def test_live_catalogue_is_listed_with_capabilities(gw, emu):
    models = await wait_for_catalogue(gw, True, emu)
    for name in ("kimi", "kimi-search", "kimi-research", "kimi-k1", "kimi-math", "kimi-silent",
                 "kimi-k2", "kimi-k2-thinking", "kimi-agent"):
        assert name in models
    live = models["kimi-k2d6-thinking"]
    assert live["owned_by"] == "kimi" and live["capabilities"]["thinking"] is True
    assert models["kimi-k2d6-agent-ultra"]["capabilities"]["agent"] is True
    assert models["kimi"]["context_length"] == 262144
    assert set(models["kimi"]["capabilities"]) == {"thinking", "search", "agent", "vision", "kimiplus"}
    await gw.client().chat.completions.create(model="kimi-k2d6-agent-ultra", messages=HELLO)
    sent = emu.state.chat_requests[-1]
    assert (sent["scenario"], sent["agentMode"], sent["kimiplus_id"]) == \
        ("SCENARIO_OK_COMPUTER", "TYPE_ULTRA", "ok-computer")


async def test_2026_09_catalogue_selects_by_options_model(start_gateway, emu, token):
    emu.state.catalog = "2026-09"
    gw = await start_gateway(kimi={"tokens": (token,)})
    models = await wait_for_catalogue(gw, True, emu)
    assert {"kimi-k2d6-chat", "kimi-k3-agent", "kimi-k3-agent-swarm"} <= set(models)
    await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    sent = emu.state.chat_requests[-1]
    assert sent["scenario"] == "SCENARIO_CHAT" and sent["options"]["model"] == "k2d6-chat"
    assert sent["options"]["reasoning_effort"] == "REASONING_EFFORT_NONE"
    await gw.client().chat.completions.create(model="kimi-agent", messages=HELLO,
                                              reasoning_effort="high")
    sent = emu.state.chat_requests[-1]
    assert sent["options"]["model"] == "k3-agent"
    assert sent["options"]["reasoning_effort"] == "REASONING_EFFORT_MAX"
    await gw.client().chat.completions.create(model="kimi-agent-swarm", messages=HELLO)
    assert emu.state.chat_requests[-1]["scenario"] == "SCENARIO_OK_COMPUTER_SWARM"


async def test_catalogue_falls_back_to_the_static_table(start_gateway, emu, token):
    emu.state.models_fail = True
    gw = await start_gateway(kimi={"tokens": (token,)})
    models = await wait_for_catalogue(gw, False, emu)
    assert any(c.path.endswith("GetAvailableModels") for c in emu.state.calls)
    assert "kimi" in models and "kimi-k2-thinking" in models
    assert all(m["owned_by"] == "kimi-gateway" for m in models.values())
    r = await gw.client().chat.completions.create(model="kimi-k2-thinking", messages=HELLO)
    assert r.choices[0].message.model_extra["reasoning_content"] == DEFAULT_THINK
    assert emu.state.chat_requests[-1]["scenario"] == "SCENARIO_K2D5"


async def test_no_server_account_means_no_catalogue_call(start_gateway, emu, token):
    gw = await start_gateway()
    models = await models_by_id(gw)
    assert "kimi" in models
    r = await gw.client(api_key=token).chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content == default_text(1, "Hello")
    assert not any(c.path.endswith("GetAvailableModels") for c in emu.state.calls)


@pytest.mark.parametrize("model,scenario,kimiplus,thinking,search", [
    ("kimi-research", "SCENARIO_K2D5", None, True, True),
    ("kimi-k1", "SCENARIO_K2D5", None, True, False),
    ("kimi-math", "SCENARIO_K2D5", None, True, False),
    ("gpt-4o", "SCENARIO_K2D5", None, False, False),
    ("coo6l3pkqq4ri39f36bg", "SCENARIO_K2D5", "coo6l3pkqq4ri39f36bg", False, False),
    ("kimi-agent", "SCENARIO_OK_COMPUTER", "ok-computer", False, False),
])
async def test_seed_names_map_as_documented(gw, emu, model, scenario, kimiplus, thinking, search):
    r = await gw.client().chat.completions.create(model=model, messages=HELLO)
    assert r.model == model
    sent = emu.state.chat_requests[-1]
    assert sent["scenario"] == scenario and sent.get("kimiplus_id") == kimiplus
    assert sent["options"]["thinking"] is thinking
    assert any(t["type"] == "TOOL_TYPE_SEARCH" for t in sent.get("tools", ())) is search
