"""OpenAI's legacy and neighbouring routes: /v1/completions through the openai SDK, the
routes the web chat cannot serve, and the paths clients use without /v1."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest

from kimi.emulator import Reply
from kimi.emulator.state import default_text


async def test_completion(gw, emu):
    r = await gw.client().completions.create(model="kimi", prompt="Say hi")
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.choices[0].text == default_text(1, "Say hi")
    assert r.choices[0].finish_reason == "stop" and r.usage.total_tokens > 0
    r = await gw.client().completions.create(model="kimi", prompt=["Say hi"], echo=True)
    assert r.choices[0].text == "Say hi" + default_text(1, "Say hi")


async def test_completion_stream_with_echo_and_usage(gw, emu):
    emu.state.replies.append(Reply(text="one two three", think="hidden", chunk=2))
    stream = await gw.client().completions.create(
        model="kimi-thinking", prompt="Count", echo=True, stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Count" + "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices


async def test_stop_and_max_tokens(gw, emu):
    emu.state.replies.append(Reply(text="alpha beta END gamma"))
    r = await gw.client().completions.create(model="kimi", prompt="x", stop="END")
    assert r.choices[0].text == "alpha beta " and r.choices[0].finish_reason == "stop"
    emu.state.replies.append(Reply(text="word " * 200))
    r = await gw.client().completions.create(model="kimi", prompt="x", max_tokens=5)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens <= 5


async def test_raw_stream_grammar(gw, emu):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/completions",
                          json={"model": "kimi", "prompt": "Hi", "stream": True}) as r:
            raw = (await r.read()).decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    bodies = [orjson.loads(e[6:]) for e in events[:-2]]
    assert all(b["object"] == "text_completion" for b in bodies)
    assert "".join(b["choices"][0]["text"] for b in bodies) == default_text(1, "Hi")


@pytest.mark.parametrize("body,param", [
    ({"prompt": "def f(", "suffix": "return x"}, "suffix"),
    ({"prompt": ["a", "b"]}, "prompt"),
    ({"prompt": [1, 2, 3]}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x", "n": 2}, "n"),
    ({"prompt": "x", "logprobs": 3}, "logprobs"),
])
async def test_refused_with_a_clear_error(gw, emu, body, param):
    with pytest.raises(openai.BadRequestError) as e:
        await gw.client().completions.create(model="kimi", **body)
    assert e.value.param == param and e.value.message
    assert not emu.state.chat_requests


@pytest.mark.parametrize("method,path,words", [
    ("POST", "/v1/embeddings", "embeddings"),
    ("POST", "/v1/images/generations", "image generation"),
    ("POST", "/v1/audio/transcriptions", "transcription"),
    ("POST", "/v1/moderations", "moderation"),
    ("GET", "/v1/files", "Files API"),
    ("POST", "/embeddings", "embeddings"),
])
async def test_unserved_routes_say_so(gw, method, path, words):
    async with aiohttp.ClientSession() as s:
        async with s.request(method, gw.url + path, json={"input": "x"}) as r:
            body = await r.json()
    assert r.status == 404 and body["error"]["code"] == "unsupported_endpoint"
    assert words in body["error"]["message"] and "no " in body["error"]["message"]


async def test_sdk_embeddings_error(gw):
    with pytest.raises(openai.NotFoundError) as e:
        await gw.client().embeddings.create(model="kimi", input="x")
    assert "embeddings" in e.value.message


async def test_unknown_route_names_itself(gw):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v2/whatever", json={}) as r:
            body = await r.json()
    assert r.status == 404 and "POST /v2/whatever" in body["error"]["message"]


async def test_routes_without_v1(gw, emu):
    client = openai.AsyncOpenAI(base_url=gw.url, api_key="unused", max_retries=0)
    r = await client.chat.completions.create(model="kimi", messages=[
        {"role": "user", "content": "Hello"}])
    assert r.choices[0].message.content == default_text(1, "Hello")
    assert "kimi" in [m.id for m in (await client.models.list()).data]
    assert (await client.models.retrieve("kimi")).id == "kimi"
    r = await client.completions.create(model="kimi", prompt="Hi")
    assert r.choices[0].text == default_text(1, "Hi")
