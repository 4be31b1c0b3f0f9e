"""Gateway endpoints that are not OpenAI's: token check (seed) and account status."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidRequest
from ..web.auth import caller_of, require_key
from ..web.body import read_json
from ..web.keys import SERVICE, TOKEN_CHECKS


async def token_check(request: web.Request) -> web.Response:
    require_key(request)
    request.app[TOKEN_CHECKS].check(request, "token checks")
    body = await read_json(request)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise InvalidRequest("'token' must be a non-empty string", param="token")
    live = await request.app[SERVICE].check_token(token.strip())
    return web.json_response({"live": live})


async def accounts(request: web.Request) -> web.Response:
    """The server's accounts; a pass-through caller sees only the accounts of its own tokens."""
    caller = caller_of(request)
    pool = request.app[SERVICE].pool
    shown = pool.known_accounts_of(caller.kimi_tokens) if caller.kimi_tokens else pool.accounts
    return web.json_response({"object": "list", "data": [a.status() for a in shown]})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/token/check", token_check)
    app.router.add_get("/v1/accounts", accounts)
