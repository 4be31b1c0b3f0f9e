"""The gateway as users run it: `python gateway.py -c config.toml` in its own process."""

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from kimi.emulator import Reply
from tests.conftest import LOG_FILES

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def gateway_process(emu, tmp_path):
    procs = []

    async def start(tokens, extra_toml=""):
        port = free_port()
        cfg = tmp_path / "config.toml"
        token_list = ", ".join(f'"{t}"' for t in tokens)
        cfg.write_text(f'[server]\nport = {port}\nshutdown_grace_seconds = 10\n{extra_toml}\n'
                       f'[kimi]\nbase_url = "{emu.url}"\nauth_url = "{emu.url}"\ntokens = [{token_list}]\n'
                       f'[store]\npath = "{tmp_path / "store.sqlite3"}"\n')
        log = open(tmp_path / f"gateway-{len(procs)}.log", "wb")
        LOG_FILES.append(log.name)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "gateway.py"), "-c", str(cfg), "--log-level", "debug",
            stdout=log, stderr=log, cwd=str(tmp_path))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
                    if r.status == 200:
                        return proc, url, Path(log.name)
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError("gateway did not start: " + Path(log.name).read_text())
    yield start
    for p in procs:
        if p.returncode is None:
            p.kill()
            await p.wait()


async def test_banner_line(gateway_process, token):
    proc, url, log = await gateway_process([token])
    banners = [line for line in log.read_text().splitlines() if "listening on" in line]
    assert len(banners) == 1
    assert url in banners[0] and "config=" in banners[0] and "accounts=1" in banners[0]


async def test_sigterm_lets_the_stream_in_flight_finish(gateway_process, emu, token):
    emu.state.chunk_delay = 0.02
    text = "0123456789" * 10
    emu.state.replies.append(Reply(text=text, chunk=2))     # ~50 events, ~1 s
    proc, url, log = await gateway_process([token])
    body = {"model": "kimi", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/chat/completions", json=body) as resp:
            await resp.content.readline()
            proc.send_signal(signal.SIGTERM)
            rest = (await resp.read()).decode()
        await asyncio.sleep(0.3)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with s.get(url + "/healthz"):
                pass
    assert rest.endswith("data: [DONE]\n\n")
    got = "".join(part.split('"')[0] for part in rest.split('"content":"')[1:])
    assert got == text
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert emu.state.chats[emu.state.last_reply.chat_id].messages[-1].text == text
    # state is kept: the conversation of the finished stream is in the store
    import sqlite3
    with sqlite3.connect(log.parent / "store.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1
