"""Upstream connections: one warm pool for every account, kept through a user's pause, and
opened before the first request. The emulator counts the connections that carry requests."""

import asyncio

from aiohttp import web

from kimi.config import Config
from kimi.emulator import mint_access_token
from kimi.upstream.client import KimiClient

HELLO = [{"role": "user", "content": "connection test"}]


async def ask(gw) -> str:
    r = await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    return r.choices[0].message.content


async def settled(emu, gw) -> int:
    """The emulator's connection count once the gateway's start-up calls (the catalogue) and
    background deletions are done."""
    for _ in range(200):
        if any(c.path.endswith("GetAvailableModels") for c in emu.state.calls):
            break
        await asyncio.sleep(0.01)
    await gw.service.drain()
    await asyncio.sleep(0.05)
    return emu.state.connections


def chat_subs(emu) -> list[str]:
    return [c.headers["Authorization"] for c in emu.state.calls if c.path.endswith("/Chat")]


async def test_requests_on_different_accounts_share_one_warm_connection(start_gateway, emu):
    tokens = tuple(mint_access_token(f"user-{i}") for i in range(6))
    gw = await start_gateway(kimi={"tokens": tokens})
    await settled(emu, gw)
    assert await ask(gw)
    before = await settled(emu, gw)
    for _ in range(5):
        assert await ask(gw)
        await settled(emu, gw)
    # Six accounts took turns (one each), and none of them opened a connection of its own.
    assert sorted(chat_subs(emu)) == sorted(f"Bearer {t}" for t in tokens)
    assert emu.state.connections == before
    assert before <= 2      # the catalogue call at start may have opened a second one


async def test_idle_connections_are_kept_as_long_as_configured(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),),
                                   "idle_connection_seconds": 1.0, "delete_chats": False},
                             store={"auto_continue_minutes": 0})
    await settled(emu, gw)
    assert await ask(gw)
    await asyncio.sleep(1.6)        # everything opened so far has been idle > 1 s: closed
    assert await ask(gw)
    kept = await settled(emu, gw)
    await asyncio.sleep(0.3)        # a short pause: the connection is still there
    assert await ask(gw)
    assert emu.state.connections == kept
    await asyncio.sleep(1.6)
    assert await ask(gw)
    assert emu.state.connections == kept + 1


async def test_a_response_that_ends_after_its_last_frame_still_leaves_its_connection(
        start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),),
                                   "delete_chats": False}, store={"auto_continue_minutes": 0})
    emu.state.end_pause = 0.05          # the chunked terminator comes 50 ms after the frame
    await settled(emu, gw)
    assert await ask(gw)
    before = await settled(emu, gw)
    for _ in range(3):
        await asyncio.sleep(0.15)       # the last response has ended meanwhile
        assert await ask(gw)
    assert emu.state.connections == before


async def test_the_answer_does_not_wait_for_the_end_of_the_upstream_response(
        start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"),),
                                   "delete_chats": False}, store={"auto_continue_minutes": 0})
    emu.state.end_pause = 0.8          # less than the 1 s the gateway would wait for it
    assert await ask(gw)
    assert sum(emu.state.active_streams.values()) == 1     # Kimi's response is still open


def test_connections_outlive_a_pause_by_default():
    # aiohttp's own default is 15 s; a user's pause between two messages is often longer.
    assert Config().kimi.idle_connection_seconds >= 60


async def test_warm_up_opens_a_connection_that_the_first_request_uses(aiohttp_server):
    handled = []

    async def answer(request: web.Request) -> web.Response:
        handled.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    server = await aiohttp_server(app)
    client = KimiClient(str(server.make_url("")), connect_timeout=5, idle_timeout=5)
    try:
        assert await client.warm_up()
        for _ in range(100):
            if server.runner.server.connections:
                break
            await asyncio.sleep(0.01)
        assert len(server.runner.server.connections) == 1 and handled == []  # open, unused
        async with client.new_session() as session:
            await client.unary(session, mint_access_token("user-a"), "/ping", {})
        assert handled == ["/ping"]
        assert len(server.runner.server.connections) == 1   # that one, not a new one
    finally:
        await client.close()


async def test_warm_up_failing_is_not_fatal(unused_tcp_port):
    client = KimiClient(f"http://127.0.0.1:{unused_tcp_port}", connect_timeout=2, idle_timeout=2)
    try:
        assert await client.warm_up() is False
    finally:
        await client.close()
