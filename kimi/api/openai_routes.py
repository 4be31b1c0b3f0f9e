"""OpenAI-compatible routes: decode, call the chat service, encode. Nothing else."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from ..canonical.events import ChatResult, ReasoningDelta, TextDelta, collect
from ..canonical.models import list_models
from ..web.auth import authenticate
from ..web.body import read_json
from ..web.keys import CONFIG, SERVICE
from ..web.middleware import TRACE
from ..web.sse import SSEStream
from .openai_wire import (DONE, ChunkEncoder, completion_body, decode_chat_request,
                          error_chunk, estimate_usage, models_body, new_completion_id)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, None)


async def chat_completions_stateful(request: web.Request) -> web.StreamResponse:
    return await _complete(request, request.match_info["conversation_id"])


async def _complete(request: web.Request, path_id: str | None) -> web.StreamResponse:
    config, service, trace = request.app[CONFIG], request.app[SERVICE], request[TRACE]
    req = decode_chat_request(await read_json(request))
    trace.model = req.model
    caller = authenticate(request, config.server.api_keys, bool(service.pool.accounts))
    turn = await service.turn(req, api_key_id=caller.api_key_id,
                              client_tokens=list(caller.kimi_tokens), path_id=path_id, trace=trace)
    async with turn:
        if not req.stream:
            return await _complete_once(req, turn, trace)
        return await _complete_stream(request, config, req, turn, trace)


def _conversation_headers(turn) -> dict:
    headers = {}
    if turn.conversation_id:
        headers["X-Conversation-Id"] = turn.conversation_id
    if turn.plan.rebuilt:
        # The account holding the chat was unusable: rebuilt elsewhere from the transcript.
        headers["X-Conversation-Rebuilt"] = "true"
    return headers


async def _complete_once(req, turn, trace) -> web.Response:
    result = await collect(turn.events())
    trace.first_token = trace.first_token or time.monotonic()
    turn.answer = result.text
    cid = turn.conversation_id or new_completion_id()
    body = completion_body(req, result, cid, estimate_usage(_prompt_text(req), result))
    return web.Response(body=orjson.dumps(body), content_type="application/json",
                        headers=_conversation_headers(turn))


async def _complete_stream(request, config, req, turn, trace) -> web.StreamResponse:
    enc = ChunkEncoder(req.model, turn.conversation_id)
    texts: list[str] = []
    reasoning: list[str] = []
    sse = SSEStream(request, keepalive=config.server.keepalive_seconds,
                    headers={"X-Request-Id": trace.request_id})

    def encode(ev):
        if trace.first_token is None:
            trace.first_token = time.monotonic()
            sse.resp.headers.update(_conversation_headers(turn))
        t = type(ev)
        if t is TextDelta:
            texts.append(ev.text)
        elif t is ReasoningDelta:
            reasoning.append(ev.text)
        return enc.event(ev)

    def tail() -> bytes:
        turn.answer = "".join(texts)
        if not req.include_usage:
            return DONE
        result = ChatResult(text=turn.answer, reasoning="".join(reasoning))
        return enc.usage(estimate_usage(_prompt_text(req), result)) + DONE

    def in_band(e) -> bytes:
        trace.note = f"in-band-error:{e.code}"
        return error_chunk(e)

    resp = await sse.run(turn.events(), encode, enc.role(), tail, in_band)
    trace.status = 200
    if sse.disconnected:
        trace.note = "client-disconnected"
        turn.answer = None
    return resp


def _prompt_text(req) -> str:
    return "\n".join(m.text for m in req.messages)


async def models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(models_body(list_models())),
                        content_type="application/json")


def _scope(request: web.Request) -> str:
    config, service = request.app[CONFIG], request.app[SERVICE]
    caller = authenticate(request, config.server.api_keys, bool(service.pool.accounts))
    return service.scope_for(caller.api_key_id, list(caller.kimi_tokens))


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
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/chat/completions/{conversation_id}", chat_completions_stateful)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/conversations", list_conversations)
    app.router.add_get("/v1/conversations/{conversation_id}", get_conversation)
    app.router.add_delete("/v1/conversations/{conversation_id}", delete_conversation)
