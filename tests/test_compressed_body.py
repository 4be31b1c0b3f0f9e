"""Compressed request bodies (Codex sends zstd in some set-ups): gzip, deflate and zstd are
decoded on the way in, the body limit holds for the decompressed size, and a body that is
not what its Content-Encoding says is a 400."""

from __future__ import annotations

import gzip
import zlib

import aiohttp
import orjson
import pytest
from backports import zstd

from kimi.emulator import Reply

BODY = orjson.dumps({"model": "kimi", "input": "compressed hello " * 50})
CODECS = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstd.compress}


async def post(url: str, data: bytes, encoding: str) -> tuple[int, dict]:
    # A fresh connection each time: after a body it cannot read, the server closes it.
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=data, headers={"Content-Encoding": encoding,
                                                   "Content-Type": "application/json"}) as r:
            return r.status, await r.json()


@pytest.mark.parametrize("encoding", list(CODECS))
async def test_compressed_bodies_are_accepted(gw, emu, encoding):
    emu.state.replies.append(Reply(text="got it"))
    data = CODECS[encoding](BODY)
    assert len(data) < len(BODY) // 4
    status, body = await post(gw.url + "/v1/responses", data, encoding)
    assert status == 200 and body["output"][0]["content"][0]["text"] == "got it"
    blocks = emu.state.chat_requests[0]["message"]["blocks"]
    assert "compressed hello" in blocks[0]["text"]["content"]


@pytest.mark.parametrize("encoding", list(CODECS))
async def test_a_bomb_stops_at_the_body_limit(start_gateway, emu, token, encoding):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"max_body_mb": 1})
    bomb = CODECS[encoding](b'{"input": "' + b"a" * (64 * 1024 * 1024) + b'"}')
    assert len(bomb) < 256 * 1024
    status, body = await post(gw.url + "/v1/chat/completions", bomb, encoding)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert emu.state.chat_requests == []


@pytest.mark.parametrize("encoding", list(CODECS))
async def test_a_body_that_is_not_its_encoding_is_a_400(gw, emu, encoding):
    status, body = await post(gw.url + "/v1/responses", b"this is not compressed at all",
                              encoding)
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert encoding in body["error"]["message"]
