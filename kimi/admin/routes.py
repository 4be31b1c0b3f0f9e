"""/admin: the console's pages and its JSON API under /admin/api/. Registered only when
[admin] key is set; every answer under /admin is no-store and carries a strict CSP."""

from __future__ import annotations

import asyncio
import html
import time
from importlib.resources import files

from aiohttp import web

from .. import __version__
from ..errors import InvalidRequest, PayloadTooLarge
from ..web.body import read_json
from ..web.keys import STARTED_AT
from .console import CONSOLE, console_for
from .session import COOKIE
from .views import add_views

ASSETS = {name: files(__package__).joinpath(name).read_text(encoding="utf-8")
          for name in ("console.html", "login.html", "console.css", "console.js")}
TYPES = {"html": "text/html", "css": "text/css", "js": "text/javascript"}
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY"}
MAX_LOGIN_BODY = 4096       # bytes: read before the key is known, so kept small
FAILED_LOGIN_DELAY = 0.5     # seconds: slows a key-guessing loop, costs a person nothing


def _asset(name: str, text: str | None = None, status: int = 200) -> web.Response:
    return web.Response(text=ASSETS[name] if text is None else text, status=status,
                        content_type=TYPES[name.rsplit(".", 1)[1]])


def _login_page(error: str = "", status: int = 200) -> web.Response:
    note = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _asset("login.html", ASSETS["login.html"].replace("<!--error-->", note), status)


async def page(request: web.Request) -> web.Response:
    if request.app[CONSOLE].sessions.logged_in(request):
        return _asset("console.html")
    return _login_page()


async def to_page(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/admin"})


async def login(request: web.Request) -> web.Response:
    sessions = request.app[CONSOLE].sessions
    if (request.content_length or 0) > MAX_LOGIN_BODY or request.content_length is None:
        raise PayloadTooLarge("a login form is a key, not a large body", code="login_too_large")
    form = await request.post()
    key = form.get("key")
    if not isinstance(key, str) or not sessions.key_matches(key.strip()):
        await asyncio.sleep(FAILED_LOGIN_DELAY)
        return _login_page("That is not the admin key.", status=401)
    resp = web.Response(status=303, headers={"Location": "/admin"})
    sessions.set_cookie(request, resp, sessions.open())
    return resp


async def logout(request: web.Request) -> web.Response:
    request.app[CONSOLE].sessions.close(request.cookies.get(COOKIE))
    resp = web.Response(status=303, headers={"Location": "/admin"})
    resp.del_cookie(COOKIE, path="/admin")
    return resp


async def script(request: web.Request) -> web.Response:
    request.app[CONSOLE].sessions.check(request)
    return _asset("console.js")


async def style(request: web.Request) -> web.Response:
    return _asset("console.css")       # the login page uses it too; it holds no data


async def overview(request: web.Request) -> web.Response:
    console = console_for(request)
    await console.fold()
    return web.json_response({"version": __version__,
                              "uptime": time.time() - request.app[STARTED_AT], "now": time.time()})


# --- accounts -------------------------------------------------------------------------------

async def accounts(request: web.Request) -> web.Response:
    console = console_for(request)
    return web.json_response({"data": console.accounts.listing(console.refresh_margin)})


async def add_account(request: web.Request) -> web.Response:
    console = console_for(request)
    body = await read_json(request)
    account = await console.accounts.add(body.get("token") if isinstance(body, dict) else None)
    return web.json_response({"id": account.alias}, status=201)


async def account_action(request: web.Request) -> web.Response:
    console = console_for(request)
    alias, action = request.match_info["id"], request.match_info["action"]
    if action not in ("disable", "enable"):
        raise InvalidRequest(f"unknown account action '{action}' (disable or enable)")
    await console.accounts.set_disabled(alias, action == "disable")
    return web.json_response({"id": alias, "disabled": action == "disable"})


async def remove_account(request: web.Request) -> web.Response:
    console = console_for(request)
    await console.accounts.remove(request.match_info["id"])
    return web.json_response({"id": request.match_info["id"], "deleted": True})


# --- API keys -------------------------------------------------------------------------------

async def keys(request: web.Request) -> web.Response:
    console = console_for(request)
    await console.fold()
    await console.keys.load()       # the stored totals: every replica's requests
    since_start = console.traffic.keys
    data = [{"id": str(i), "name": console.keys.name_of(str(i)), "source": "config",
             "hint": None, "created_at": None, "revoked_at": None,
             **_usage(since_start.get(str(i)))} for i in range(console.keys.config_count)]
    for k in console.keys.stored():
        data.append({"id": k.id, "name": k.name, "source": "console", "hint": k.hint,
                     "created_at": k.created_at, "revoked_at": k.revoked_at,
                     "requests": k.requests, "prompt_tokens": k.prompt_tokens,
                     "completion_tokens": k.completion_tokens, "last_used": k.last_used})
    return web.json_response({"data": data})


def _usage(totals: list | None) -> dict:
    requests, prompt, completion, last = totals or (0, 0, 0, None)
    return {"requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "last_used": last}


async def create_key(request: web.Request) -> web.Response:
    console = console_for(request)
    body = await read_json(request)
    key, secret = await console.keys.create(body.get("name") if isinstance(body, dict) else None)
    # The only time the secret leaves the gateway: the store keeps its hash.
    return web.json_response({"id": key.id, "name": key.name, "secret": secret}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    console = console_for(request)
    key = await console.keys.revoke(request.match_info["id"])
    return web.json_response({"id": key.id, "revoked_at": key.revoked_at})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin", page)
    app.router.add_get("/admin/", to_page)
    app.router.add_post("/admin/login", login)
    app.router.add_post("/admin/logout", logout)
    app.router.add_get("/admin/console.js", script)
    app.router.add_get("/admin/console.css", style)
    app.router.add_get("/admin/api/overview", overview)
    app.router.add_get("/admin/api/accounts", accounts)
    app.router.add_post("/admin/api/accounts", add_account)
    app.router.add_post("/admin/api/accounts/{id}/{action}", account_action)
    app.router.add_delete("/admin/api/accounts/{id}", remove_account)
    app.router.add_get("/admin/api/keys", keys)
    app.router.add_post("/admin/api/keys", create_key)
    app.router.add_delete("/admin/api/keys/{id}", revoke_key)
    add_views(app)
    app.on_response_prepare.append(_headers)


async def _headers(request: web.Request, resp: web.StreamResponse) -> None:
    if request.path == "/admin" or request.path.startswith("/admin/"):
        resp.headers.update(HEADERS)
