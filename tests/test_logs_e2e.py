"""What the gateway logs for a user: one line per event, no tracebacks for ordinary events."""

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from kimi.app import create_app
from kimi.emulator import Reply
from tests.conftest import make_config


@pytest.fixture
async def uncancelled_gateway(emu, tmp_path, token):
    """A gateway whose handlers are not cancelled when the client goes away, so the stream
    meets the closed connection on its next write: the race gateway.py can lose either way."""
    runner = web.AppRunner(create_app(make_config(emu, tmp_path, kimi={"tokens": (token,)})),
                           handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield "http://127.0.0.1:%d" % runner.addresses[0][1]
    await runner.cleanup()


async def test_a_client_gone_mid_stream_is_not_an_error(uncancelled_gateway, emu, caplog):
    url = uncancelled_gateway
    emu.state.replies.append(Reply(text="x" * 400, chunk=1))
    emu.state.chunk_delay = 0.01
    body = {"model": "kimi", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/chat/completions", json=body) as resp:
            await resp.content.readline()
            await resp.content.readline()
    await asyncio.sleep(0.5)
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    lines = [r.getMessage() for r in caplog.records if r.name == "kimi.access"]
    assert any("client-disconnected" in line for line in lines)


async def test_no_line_is_logged_twice(uncancelled_gateway, emu, caplog):
    body = {"model": "kimi", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(uncancelled_gateway + "/v1/chat/completions", json=body) as resp:
                await resp.read()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("kimi")]
    assert len(lines) == len(set(lines)), lines


async def test_a_refused_refresh_token_is_not_logged_twice(start_gateway, emu, caplog):
    from kimi.emulator import mint_refresh_token
    gw = await start_gateway(kimi={"tokens": (mint_refresh_token("user-unknown"),)})
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions",
                          json={"model": "kimi", "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 503
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("kimi")]
    assert len(lines) == len(set(lines)), lines
