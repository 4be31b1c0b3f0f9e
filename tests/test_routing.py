"""Routes that two dialects share (GET /v1/models), told apart by the request."""

from __future__ import annotations

from aiohttp import web

from kimi.web.routing import add_shared_route


def app_with(order: str) -> web.Application:
    app = web.Application()

    async def plain(request):
        return web.Response(text="plain")

    async def special(request):
        return web.Response(text="special")

    def special_client(request):
        return "x-special" in request.headers

    entries = [(plain, None), (special, special_client)]
    for handler, matches in (entries if order == "plain-first" else entries[::-1]):
        add_shared_route(app, "GET", "/v1/models", handler, matches=matches)
    return app


async def test_the_matching_variant_serves_whatever_the_order(aiohttp_client):
    for order in ("plain-first", "special-first"):
        client = await aiohttp_client(app_with(order))
        assert await (await client.get("/v1/models")).text() == "plain"
        r = await client.get("/v1/models", headers={"x-special": "1"})
        assert await r.text() == "special"
        assert (await client.post("/v1/models")).status == 405
