"""Gateway endpoints that are not OpenAI's: token check (seed) and account status."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidRequest
from ..web.auth import caller_of
from ..web.body import read_json
from ..web.keys import API_KEYS, CONFIG, SERVICE


def _guard(request: web.Request) -> None:
    """Protected by the API keys when they are configured (in the file or the console)."""
    stored = request.app.get(API_KEYS)
    if request.app[CONFIG].server.api_keys or (stored is not None and stored.active):
        caller_of(request)


async def token_check(request: web.Request) -> web.Response:
    _guard(request)
    body = await read_json(request)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise InvalidRequest("'token' must be a non-empty string", param="token")
    live = await request.app[SERVICE].check_token(token.strip())
    return web.json_response({"live": live})


async def accounts(request: web.Request) -> web.Response:
    _guard(request)
    return web.json_response({"object": "list", "data": request.app[SERVICE].account_status()})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/token/check", token_check)
    app.router.add_get("/v1/accounts", accounts)
