"""Bad input gets a clear 4xx in OpenAI's error shape, never a 500, and never costs unbounded
memory."""

import json
import sqlite3

import aiohttp
import pytest

from kimi.emulator import Reply

HELLO = [{"role": "user", "content": "hi"}]


async def post(gw, data: bytes, headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=data,
                          headers={"Content-Type": "application/json", **(headers or {})}) as resp:
            return resp.status, await resp.json(content_type=None)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_deeply_nested_tool_calls_are_a_400(gw):
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"},
            "extra": "@"}
    body = json.dumps({"model": "kimi", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [call]}, *HELLO]})
    body = body.replace('"@"', nested(300))
    status, err = await post(gw, body.encode())
    assert status == 400 and err["error"]["type"] == "invalid_request_error", err


async def test_deep_nesting_in_a_large_body_is_a_400(gw):
    pad = "x" * (9 * 1024 * 1024)
    body = json.dumps({"model": "kimi", "messages": HELLO, "pad": pad, "deep": "@"})
    status, err = await post(gw, body.replace('"@"', nested(100_000)).encode())
    assert status == 400 and "nest" in err["error"]["message"], err


@pytest.mark.parametrize("where", ["content", "model"])
async def test_a_lone_surrogate_in_a_large_body_is_a_400(gw, where):
    pad = "x" * (9 * 1024 * 1024)
    body = {"model": "kimi", "messages": [{"role": "user", "content": pad + "@"}]}
    if where == "model":
        body = {"model": "kimi@", "messages": [{"role": "user", "content": pad}]}
    data = json.dumps(body).replace("@", "\\ud800").encode()
    status, err = await post(gw, data)
    assert status == 400 and "surrogate" in err["error"]["message"], err


async def test_a_lone_surrogate_in_a_small_body_is_a_400(gw):
    data = json.dumps({"model": "kimi", "messages": [{"role": "user", "content": "a@"}]})
    status, err = await post(gw, data.replace("@", "\\udc00").encode())
    assert status == 400, err


async def test_an_image_url_with_a_backslash_is_a_400(gw):
    part = {"type": "image_url", "image_url": {"url": "http://example.com\\@evil/x.png"}}
    body = {"model": "kimi", "messages": [{"role": "user", "content": [part]}]}
    status, err = await post(gw, json.dumps(body).encode())
    assert status == 400 and err["error"]["param"], err


async def test_more_assistant_turns_than_sqlite_takes_parameters(gw, emu):
    """A history is looked up by the digest of each prefix that ends with an assistant turn:
    more of them than one SQLite statement takes as parameters."""
    emu.state.replies.append(Reply(text="ok"))
    limit = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    messages = [{"role": ("user", "assistant")[i % 2], "content": "m"} for i in range(2 * limit + 3)]
    status, out = await post(gw, json.dumps({"model": "kimi", "messages": messages}).encode())
    assert status == 200 and out["choices"][0]["message"]["content"] == "ok", out
