"""Gathered writes (kimi/web/sse.py) never hold a piece back until the next one arrives,
and the event-loop choice of gateway.py."""

import asyncio

import aiohttp
import orjson
import pytest

import gateway
from kimi.emulator import Reply

PIECES = ["alpha ", "beta ", "gamma ", "delta"]


async def test_each_piece_reaches_the_client_before_the_next_is_sent(gw, emu):
    # The emulator records a piece on the assistant message only after its chunk_delay has
    # passed; a piece that reached the client first was not held back for the next one.
    emu.state.chunk_delay = 0.15
    emu.state.replies.append(Reply(text="".join(PIECES), chunk=6))
    body = {"model": "kimi", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    seen, got = [], ""
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body) as resp:
            buf = b""
            async for data in resp.content.iter_any():
                buf += data
                *events, buf = buf.split(b"\n\n")
                for event in events:
                    if not event.startswith(b"data: {"):
                        continue
                    piece = orjson.loads(event[6:])["choices"][0]["delta"].get("content")
                    if piece:
                        assistant = next(iter(emu.state.chats.values())).messages[-1]
                        seen.append((got, assistant.text))
                        got += piece
    assert got == "".join(PIECES)
    assert [before for before, _ in seen] == [upstream for _, upstream in seen]
    assert len(seen) == len(PIECES)


def test_loop_choice():
    loop = gateway.new_event_loop("asyncio")
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    uvloop = pytest.importorskip("uvloop")
    for choice in ("auto", "uvloop"):
        loop = gateway.new_event_loop(choice)
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()


def test_loop_uvloop_without_the_extra_is_a_clear_error(monkeypatch, capsys, tmp_path):
    import builtins
    real_import = builtins.__import__

    def no_uvloop(name, *args, **kw):
        if name == "uvloop":
            raise ImportError("no uvloop")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert gateway.new_event_loop("uvloop") is None
    loop = gateway.new_event_loop("auto")
    assert type(loop).__module__.startswith("asyncio")
    loop.close()
    config = tmp_path / "c.toml"
    config.write_text("")
    assert gateway.main(["-c", str(config), "--loop", "uvloop"]) == 2
    assert "fast" in capsys.readouterr().err
