"""The console's read-mostly views: the traffic list and charts, and conversations per key."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidRequest
from .console import console_for

FILTERS = ("key", "model", "dialect", "account", "status")
MAX_ROWS = 500


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRequest(f"'{name}' must be an integer from {low} to {high}", param=name)
    return int(raw)


def _matcher(request: web.Request):
    """Filters: exact key name, model, dialect or account; status 'ok', 'error' or a code."""
    wanted = {f: request.query[f] for f in FILTERS if request.query.get(f)}
    if not wanted:
        return None

    def match(row: dict) -> bool:
        for name, value in wanted.items():
            if name == "status":
                if not _status_matches(row, value):
                    return False
            elif str(row.get(name) or "") != value:
                return False
        return True
    return match


def _status_matches(row: dict, value: str) -> bool:
    failed = (row["status"] or 0) >= 400 or row["error"] is not None
    if value == "ok":
        return not failed
    if value == "error":
        return failed
    return str(row["status"]) == value


async def traffic(request: web.Request) -> web.Response:
    console = console_for(request)
    limit = _int(request, "limit", 200, 1, MAX_ROWS)
    names = {}

    def named(row: dict) -> dict:
        key = row["key"]
        if key not in names:
            names[key] = console.key_name(key)
        row["key"] = names[key]
        return row
    match = _matcher(request)
    rows = console.traffic.rows(lambda r: match is None or match(r), limit, named)
    return web.json_response({"data": rows, "replica": console.replica})


async def series(request: web.Request) -> web.Response:
    console = console_for(request)
    await console.fold()
    minutes = _int(request, "minutes", 60, 5, 360)
    return web.json_response({"minutes": minutes, "data": console.traffic.series(minutes),
                              "replica": console.replica})


async def conversations(request: web.Request) -> web.Response:
    console = console_for(request)
    data = [{"scope": scope, "name": console.scope_name(scope), "count": count,
             "automatic": auto or 0}
            for scope, count, auto in await console.repo.conversation_counts()]
    return web.json_response({"data": data})


async def scope_conversations(request: web.Request) -> web.Response:
    console = console_for(request)
    scope = request.match_info["scope"]
    rows = await console.repo.conversations(scope)
    data = [{"id": cid, "model": model, "automatic": bool(auto), "created_at": created,
             "updated_at": updated, "expires_at": expires}
            for cid, model, auto, created, updated, expires in rows]
    return web.json_response({"scope": scope, "name": console.scope_name(scope), "data": data})


async def delete_conversation(request: web.Request) -> web.Response:
    console = console_for(request)
    scope, cid = request.match_info["scope"], request.match_info["id"]
    # The service deletes the Kimi chat too, under the conversation's lock.
    await console.service.delete_conversation(scope, cid)
    return web.json_response({"scope": scope, "id": cid, "deleted": True})


def add_views(app: web.Application) -> None:
    app.router.add_get("/admin/api/traffic", traffic)
    app.router.add_get("/admin/api/traffic/series", series)
    app.router.add_get("/admin/api/conversations", conversations)
    app.router.add_get("/admin/api/conversations/{scope}", scope_conversations)
    app.router.add_delete("/admin/api/conversations/{scope}/{id}", delete_conversation)
