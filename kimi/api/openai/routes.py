"""OpenAI-compatible routes: decode, run the turn, encode. Nothing else."""

from __future__ import annotations

import orjson
from aiohttp import web

from ...canonical.events import collect
from ...web.auth import caller_of
from ...web.body import read_json
from ...web.keys import CATALOGUE, SERVICE
from ...web.middleware import add_error_body
from ..models import add_models_shape
from ..turns import conversation_headers, first_token, open_turn, stream_turn
from .attachments import claim_inline_parts
from .decode import decode_chat_request
from .encode import (DONE, ChunkEncoder, completion_body, error_body, error_chunk,
                     models_body, new_completion_id)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, None)


async def chat_completions_stateful(request: web.Request) -> web.StreamResponse:
    return await _complete(request, request.match_info["conversation_id"])


async def _complete(request: web.Request, path_id: str | None) -> web.StreamResponse:
    caller_of(request)      # before the body is read: no work for strangers
    req = decode_chat_request(await read_json(request, claim_inline_parts),
                              request.app[CATALOGUE].resolve)
    async with await open_turn(request, req, "openai", path_id) as turn:
        if req.stream:
            enc = ChunkEncoder(req.model, _response_id(turn))
            return await stream_turn(request, turn, enc.event, head=enc.role(),
                                     tail=lambda: DONE, in_band=error_chunk)
        result = await collect(turn.events())
        first_token(request)
        body = completion_body(req, result, _response_id(turn))
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            headers=conversation_headers(turn))


def _response_id(turn) -> str:
    """The answer's `id`: the conversation's when the client continues by answer id (seeds'
    `conversation_id`, automatic continuation), else a fresh one per answer."""
    if turn.conversation_id and not turn.plan.via_path:
        return turn.conversation_id
    return new_completion_id()


def _models(request: web.Request) -> dict:
    return models_body(request.app[CATALOGUE].list())


def _model(request: web.Request, wanted: str) -> dict | None:
    return next((e for e in _models(request)["data"] if e["id"] == wanted), None)


def _scope(request: web.Request) -> str:
    return caller_of(request).scope


async def list_conversations(request: web.Request) -> web.Response:
    data = await request.app[SERVICE].list_conversations(_scope(request))
    return web.json_response({"object": "list", "data": data})


async def get_conversation(request: web.Request) -> web.Response:
    conv = await request.app[SERVICE].get_conversation(_scope(request),
                                                       request.match_info["conversation_id"])
    return web.json_response(conv)


async def delete_conversation(request: web.Request) -> web.Response:
    cid = request.match_info["conversation_id"]
    await request.app[SERVICE].delete_conversation(_scope(request), cid)
    return web.json_response({"id": cid, "object": "conversation.deleted", "deleted": True})


def add_routes(app: web.Application) -> None:
    add_error_body(app, lambda request: True, error_body)     # the default shape
    add_models_shape(app, lambda request: True, _models, _model)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)     # clients that drop the /v1
    app.router.add_post("/v1/chat/completions/{conversation_id}", chat_completions_stateful)
    app.router.add_get("/v1/conversations", list_conversations)
    app.router.add_get("/v1/conversations/{conversation_id}", get_conversation)
    app.router.add_delete("/v1/conversations/{conversation_id}", delete_conversation)
