"""`GET /v1/models` and `GET /v1/models/{id}` for every dialect: the same path answers in the
shape of the client asking (Anthropic's SDK and Claude Code parse only Anthropic's list, the
OpenAI SDK only OpenAI's). Each dialect registers how to recognise its requests and how to
render the list and one entry; the first that matches answers, the default registers first."""

from __future__ import annotations

import orjson
from aiohttp import web

from ..errors import NotFound

# [(matches(request), list_body(request) -> dict, one_body(request, id) -> dict | None)]
MODEL_SHAPES = web.AppKey("model_shapes", list)


def add_models_shape(app: web.Application, matches, list_body, one_body) -> None:
    """A dialect's model list shape, for the requests `matches(request)` says are its own.
    Later registrations are tried first, so the default (OpenAI's) registers first."""
    app.setdefault(MODEL_SHAPES, []).insert(0, (matches, list_body, one_body))


def _shape(request: web.Request):
    return next(s for s in request.app[MODEL_SHAPES] if s[0](request))


async def models(request: web.Request) -> web.Response:
    return _json(_shape(request)[1](request))


async def model(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    entry = _shape(request)[2](request, wanted)
    if entry is None:
        raise NotFound(f"no model '{wanted}' in the catalogue (any name still works in a chat "
                       "request: unknown names fall back to the default model)", param="model",
                       code="model_not_found")
    return _json(entry)


def _json(body: dict) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", model)
    app.router.add_get("/models", models)              # clients that drop the /v1
    app.router.add_get("/models/{model}", model)
