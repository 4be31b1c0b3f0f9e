"""CORS for the API routes, so browser clients on other origins (the web builds of NextChat
and LobeChat, a page of one's own) can call the gateway.

Preflight `OPTIONS` requests are answered here, before routing would call them a 405; every
API response (errors and streams included) carries `Access-Control-Allow-Origin`. Credentials
(cookies) are never allowed: callers authenticate with an `Authorization` header, which a
page must send on purpose, so any origin may be allowed by default.
"""

from __future__ import annotations

from aiohttp import web

from .keys import CONFIG

API_PREFIXES = ("/v1/", "/token/check")
ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
EXPOSE = "X-Request-Id, X-Conversation-Id, X-Conversation-Rebuilt, Retry-After"
MAX_AGE = "600"


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin is None or not request.path.startswith(API_PREFIXES):
        return None
    origins = request.app[CONFIG].server.cors_origins
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


@web.middleware
async def preflight(request: web.Request, handler):
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        origin = _allowed_origin(request)
        if origin is not None:
            headers = {"Access-Control-Allow-Origin": origin,
                       "Access-Control-Allow-Methods": ALLOW_METHODS,
                       "Access-Control-Allow-Headers":
                           request.headers.get("Access-Control-Request-Headers", ""),
                       "Access-Control-Max-Age": MAX_AGE, "Vary": "Origin"}
            return web.Response(status=204, headers=headers)
    return await handler(request)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every response, streamed ones included."""
    origin = _allowed_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE
        if origin != "*":
            response.headers.add("Vary", "Origin")
