"""Gemini API routes (generateContent, streamGenerateContent, countTokens, models): decode,
run the turn, encode. `{v}` is v1beta (Gemini CLI and most clients), v1 (google-genai's
default) or v1alpha. GET /v1/models (kimi/api/models.py, shared by the dialects) answers in
this shape to a Google client (its key header or `?key=`, or the SDK's x-goog-api-client)."""

from __future__ import annotations

import orjson
from aiohttp import web

from ...canonical.events import collect
from ...errors import NotFound
from ...web.auth import caller_of
from ...web.body import read_json
from ...web.keys import CATALOGUE
from ...web.middleware import add_error_body
from ..models import add_models_shape
from ..turns import (conversation_headers, first_token, open_turn, prompt_tokens,
                     stream_turn)
from .contents import RAW_BASE64, claim_inline_data
from .decode import decode_count, decode_generate, model_name
from .encode import (StreamEncoder, error_body, error_chunk, model_body, models_body,
                     new_response_id, response_body)

VERSIONS = "{v:v1beta|v1alpha|v1}"
ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")


def is_gemini(request: web.Request) -> bool:
    path = request.path
    if path.startswith(("/v1beta/", "/v1alpha/")) or path in ("/v1beta", "/v1alpha"):
        return True
    if not path.startswith("/v1/models"):
        return False
    return request.method == "POST" or _google_client(request)


def _google_client(request: web.Request) -> bool:
    headers = request.headers
    return ("x-goog-api-key" in headers or "key" in request.query
            or "google-genai" in headers.get("x-goog-api-client", ""))


async def model_action(request: web.Request) -> web.StreamResponse:
    target = request.match_info["target"]
    model, _, action = target.rpartition(":")
    if action not in ACTIONS or not model:
        raise NotFound(f"'{target}': this gateway serves models/<model>:"
                       + ", :".join(ACTIONS), code="unknown_method")
    caller_of(request)      # before the body is read: no work for strangers
    body = await read_json(request, claim_inline_data, RAW_BASE64)
    if action == "countTokens":
        return await _count(request, body, model)
    sse = action == "streamGenerateContent" and request.query.get("alt") == "sse"
    gem = decode_generate(body, model, sse, request.app[CATALOGUE].resolve)
    async with await open_turn(request, gem.chat, "gemini") as turn:
        if sse:
            enc = StreamEncoder(gem.chat.model, new_response_id(), gem.include_thoughts)
            return await stream_turn(request, turn, enc.event, tail=enc.tail,
                                     in_band=error_chunk, ping=enc.keepalive())
        result = await collect(turn.events())
        first_token(request)
        answer = response_body(result, gem.chat.model, new_response_id(), gem.include_thoughts)
        if action == "streamGenerateContent":
            answer = [answer]       # without alt=sse the stream is one JSON array
        return web.Response(body=orjson.dumps(answer), content_type="application/json",
                            headers=conversation_headers(turn))


async def _count(request: web.Request, body, model: str) -> web.Response:
    req = decode_count(body, model, request.app[CATALOGUE].resolve)
    return web.json_response({"totalTokens": await prompt_tokens(request, req)})


def _models(request: web.Request) -> dict:
    return models_body(request.app[CATALOGUE].list())


def _model(request: web.Request, wanted: str) -> dict | None:
    wanted = model_name(wanted)
    return next((model_body(s) for s in request.app[CATALOGUE].list() if s.id == wanted), None)


async def models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(_models(request)), content_type="application/json")


async def model(request: web.Request) -> web.Response:
    found = _model(request, request.match_info["model"])
    if found is None:
        raise NotFound(f"no model '{model_name(request.match_info['model'])}' in the catalogue "
                       "(any name still works in generateContent: unknown names fall back to "
                       "the default model)")
    return web.Response(body=orjson.dumps(found), content_type="application/json")


def add_routes(app: web.Application) -> None:
    add_error_body(app, is_gemini, error_body)
    app.router.add_post(f"/{VERSIONS}/models/{{target}}", model_action)
    for version in ("v1beta", "v1alpha"):
        app.router.add_get(f"/{version}/models", models)
        app.router.add_get(f"/{version}/models/{{model}}", model)
    add_models_shape(app, _google_client, _models, _model)      # GET /v1/models
