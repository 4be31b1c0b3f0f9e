"""Routes that several dialects share: the same method and path (GET /v1/models is OpenAI's
model list and Google's), told apart by what the request carries."""

from __future__ import annotations

import functools

from aiohttp import web

# (method, path) -> [(matches(request) | None, handler)]: the first that matches serves.
SHARED_ROUTES = web.AppKey("shared_routes", dict)


def add_shared_route(app: web.Application, method: str, path: str, handler, *,
                     matches=None) -> None:
    """`handler` serves the requests `matches(request)` says are its own; the one registered
    without `matches` serves the rest. Registration order does not matter."""
    table = app.setdefault(SHARED_ROUTES, {})
    variants = table.get((method, path))
    if variants is None:
        variants = table[(method, path)] = []
        app.router.add_route(method, path, functools.partial(_dispatch, variants))
    if matches is None:
        variants.append((None, handler))
    else:
        variants.insert(0, (matches, handler))


async def _dispatch(variants: list, request: web.Request) -> web.StreamResponse:
    for matches, handler in variants:
        if matches is None or matches(request):
            return await handler(request)
    raise web.HTTPNotFound()
