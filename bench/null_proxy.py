"""A do-nothing aiohttp proxy: the floor for any Python gateway in the same place.

`python bench/null_proxy.py --port P --upstream URL [--uvloop]`. It forwards each request's
bytes to the emulator and pipes the response bytes back unchanged: the same two extra
loopback hops and the same HTTP machinery as the gateway, with no translation, accounts or
logging. The bench's direct Connect client talks to it as if it were the emulator.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

FORWARDED = ("Authorization", "Content-Type", "Connect-Protocol-Version")
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
    upstream = request.app["upstream"]
    async with request.app[SESSION].post(upstream + request.path, data=body,
                                         headers=headers) as up:
        resp = web.StreamResponse(status=up.status,
                                  headers={"Content-Type": up.headers.get("Content-Type", "")})
        await resp.prepare(request)
        async for data in up.content.iter_any():
            await resp.write(data)
        await resp.write_eof()
    return resp


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def _session(app: web.Application):
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield
    await app[SESSION].close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    app = web.Application()
    app["upstream"] = args.upstream.rstrip("/")
    app.cleanup_ctx.append(_session)
    app.router.add_get("/ping", ping)
    app.router.add_post("/{tail:.*}", forward)
    loop = None
    if args.uvloop:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None,
                backlog=1024, loop=loop)


if __name__ == "__main__":
    main()
