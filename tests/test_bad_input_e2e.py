"""Bad input gets a clear 4xx in OpenAI's error shape, never a 500, and never costs unbounded
memory."""

import asyncio
import json
import sqlite3

import aiohttp
import pytest

from kimi.emulator import Reply
from kimi.web.body import MAX_DEPTH

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


@pytest.mark.parametrize("depth,status", [(MAX_DEPTH, 200), (MAX_DEPTH + 1, 400)])
async def test_the_nesting_limit_holds_for_a_short_body(gw, depth, status):
    """A short body is read without the data-URL scanner: the limit is the same, to the level
    (the body object is the first level)."""
    body = json.dumps({"model": "kimi", "messages": HELLO, "x": "@"})
    got, out = await post(gw, body.replace('"@"', nested(depth - 1)).encode())
    assert got == status, out


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


async def test_a_multipart_body_is_told_to_send_json(gw):
    form = aiohttp.FormData()
    form.add_field("model", "kimi")
    form.add_field("file", b"%PDF-1.4", filename="a.pdf", content_type="application/pdf")
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=form) as resp:
            err = await resp.json()
    assert resp.status == 400 and "send JSON" in err["error"]["message"], err


async def test_a_body_over_the_cap_names_its_size_and_the_setting(start_gateway, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"max_body_mb": 1})
    status, err = await post(gw, b"x" * (2 * 1024 * 1024))
    assert status == 413
    assert "2.0 MiB" in err["error"]["message"] and "[server] max_body_mb = 1" in err["error"]["message"]


async def test_concurrent_large_bodies_share_one_memory_budget(start_gateway, token):
    gw = await start_gateway(kimi={"tokens": (token,)},
                             server={"max_body_mb": 4, "body_memory_mb": 8})
    part = b'{"model": "kimi", "pad": "' + b"x" * (2 * 1024 * 1024)
    release = asyncio.Event()

    async def held():
        yield part
        await release.wait()
        yield b'", "messages": [{"role": "user", "content": "hi"}]}'

    async with aiohttp.ClientSession() as s:
        first = asyncio.ensure_future(s.post(gw.url + "/v1/chat/completions", data=held(),
                                             headers={"Content-Type": "application/json"}))
        await asyncio.sleep(0.3)            # the first body is half read, its memory reserved
        status, err = await post(gw, part + b'"}')
        assert status == 429 and "[server] body_memory_mb = 8" in err["error"]["message"], err
        release.set()
        async with await first as resp:
            assert resp.status == 200
    status, err = await post(gw, part + b'", "messages": [{"role": "user", "content": "hi"}]}')
    assert status == 200, err                     # all given back
    status, err = await post(gw, b" " * (3 * 1024 * 1024))
    assert status == 413 and "body_memory_mb" in err["error"]["message"], err
