"""OpenAI Responses API routes (Codex CLI, the openai SDK's `responses`): decode, run the
turn, encode; stored responses for `previous_response_id`, GET and DELETE."""

from __future__ import annotations

import orjson
from aiohttp import web

from ...canonical.events import Citation, Finish, ReasoningDelta, TextDelta, Usage
from ...canonical.request import Message
from ...canonical.tools import ToolCall
from ...errors import NotFound
from ...web.auth import caller_of
from ...web.body import read_json
from ...web.keys import CATALOGUE, RESPONSES
from ...web.middleware import add_error_body
from ..models import add_models_shape
from ..turns import conversation_headers, first_token, open_turn, prompt_tokens, stream_turn
from .codex import models_body
from .decode import ResponsesRequest, decode_responses_request
from .encode import ResponseEncoder, error_body
from .items import input_items, items_page
from .parts import claim_inline_parts

CONTENT = (TextDelta, ReasoningDelta, Citation, ToolCall, Finish, Usage)
PATHS = ("/v1/responses", "/responses")


def _scope(request: web.Request) -> str:
    """The caller's namespace, as for conversations (web/auth.py)."""
    return caller_of(request).scope


async def _decode(request: web.Request, scope: str) -> ResponsesRequest:
    body = await read_json(request, claim_inline_parts)
    rr = decode_responses_request(body, request.app[CATALOGUE].resolve)
    if rr.previous_response_id is not None:
        stored = request.app[RESPONSES]
        previous = await stored.get(scope, rr.previous_response_id)
        if previous is None:
            raise NotFound(f"no response '{rr.previous_response_id}' for this caller",
                           param="previous_response_id", code="previous_response_not_found")
        rr.compose(stored.history(previous))
    return rr


async def create(request: web.Request) -> web.StreamResponse:
    scope = _scope(request)     # before the body is read: no work for strangers
    rr = await _decode(request, scope)
    stored = request.app[RESPONSES]
    enc = ResponseEncoder(rr.echo)
    if rr.store:
        stored.saving(scope, enc.id)
    try:
        resp = await _run(request, rr, enc)
    finally:
        if rr.store and enc.status in ("completed", "incomplete"):
            await stored.save(scope, enc.id, enc.response(), rr.req.messages + [answer(enc)])
        elif rr.store:
            stored.abandon(scope, enc.id)
    return resp


async def _run(request: web.Request, rr: ResponsesRequest, enc: ResponseEncoder):
    async with await open_turn(request, rr.req, "responses") as turn:
        if rr.req.stream:
            return await stream_turn(request, turn, enc.event, lead=enc.head(), tail=enc.tail,
                                     in_band=enc.in_band, ping=enc.keepalive)
        async for ev in turn.events():
            if isinstance(ev, CONTENT):
                enc.event(ev)
        enc.tail()
        first_token(request)
        return web.Response(body=orjson.dumps(enc.response()), content_type="application/json",
                            headers=conversation_headers(turn))


def answer(enc: ResponseEncoder) -> Message:
    """The answer as the turn stored it in its conversation: the text and the calls."""
    return Message(role="assistant", text="".join(enc.texts), tool_calls=tuple(enc.calls))


async def retrieve(request: web.Request) -> web.Response:
    found = await request.app[RESPONSES].get(_scope(request), request.match_info["id"])
    if found is None:
        raise _not_found(request.match_info["id"])
    return web.Response(body=orjson.dumps(found.body), content_type="application/json")


async def list_input_items(request: web.Request) -> web.Response:
    stored = request.app[RESPONSES]
    rid = request.match_info["id"]
    found = await stored.get(_scope(request), rid)
    if found is None:
        raise _not_found(rid)
    items = input_items(rid, stored.history(found)[:-1])     # the last row is the answer
    return web.json_response(items_page(items, request.query))


async def count_input_tokens(request: web.Request) -> web.Response:
    rr = await _decode(request, _scope(request))
    return web.json_response({"object": "response.input_tokens",
                              "input_tokens": await prompt_tokens(request, rr.req)})


async def delete(request: web.Request) -> web.Response:
    rid = request.match_info["id"]
    if not await request.app[RESPONSES].delete(_scope(request), rid):
        raise _not_found(rid)
    return web.json_response({"id": rid, "object": "response.deleted", "deleted": True})


def _not_found(rid: str) -> NotFound:
    return NotFound(f"no response '{rid}' for this caller", param="response_id",
                    code="response_not_found")


def _from_codex(request: web.Request) -> bool:
    """Codex CLI asks its provider's base_url + /models?client_version=X for model metadata."""
    return "client_version" in request.query


def _codex_models(request: web.Request) -> dict:
    return models_body(request.app[CATALOGUE].list())


def _codex_model(request: web.Request, wanted: str) -> dict | None:
    return next((m for m in _codex_models(request)["models"] if m["slug"] == wanted), None)


def add_routes(app: web.Application) -> None:
    add_error_body(app, lambda request: request.path.startswith(PATHS), error_body)
    add_models_shape(app, _from_codex, _codex_models, _codex_model)
    for base in PATHS:
        app.router.add_post(base, create)
        app.router.add_post(base + "/input_tokens", count_input_tokens)
        app.router.add_get(base + "/{id}/input_items", list_input_items)
        app.router.add_get(base + "/{id}", retrieve)
        app.router.add_delete(base + "/{id}", delete)
