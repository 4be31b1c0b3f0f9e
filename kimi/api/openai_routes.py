"""OpenAI-compatible routes: decode, call the chat service, encode. Nothing else."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import orjson
from aiohttp import web

from ..canonical.events import FLUSH, ChatResult, ReasoningDelta, TextDelta, collect
from ..canonical.shaping import ShapeOptions, shape
from ..errors import NotFound
from ..web.auth import caller_of
from ..web.body import read_json
from ..web.keys import CATALOGUE, CONFIG, SERVICE, TOKEN_COUNTER
from ..web.middleware import TRACE
from ..web.sse import SSEStream
from .openai_attachments import claim_inline_parts
from .openai_wire import (DONE, ChunkEncoder, completion_body, decode_chat_request,
                          error_chunk, models_body, new_completion_id)

# Texts longer than this are counted off the event loop: the count takes about 1 ms per 3,000
# characters of English and per 300 of Chinese. In a thread it still holds the GIL, but the
# loop gets its turn every switch interval (5 ms), which is what this keeps the inline cost under.
COUNT_INLINE_CHARS = 1536


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, None)


async def chat_completions_stateful(request: web.Request) -> web.StreamResponse:
    return await _complete(request, request.match_info["conversation_id"])


async def _complete(request: web.Request, path_id: str | None) -> web.StreamResponse:
    config, service, trace = request.app[CONFIG], request.app[SERVICE], request[TRACE]
    caller = caller_of(request)     # before the body is read: no work for strangers
    req = decode_chat_request(await read_json(request, claim_inline_parts),
                              request.app[CATALOGUE].resolve)
    trace.model = req.model
    turn = await service.turn(req, scope=caller.scope,
                              client_tokens=list(caller.kimi_tokens), path_id=path_id, trace=trace)
    counter = request.app[TOKEN_COUNTER]
    options = ShapeOptions(stop=req.stop, max_tokens=req.max_tokens, silent=req.spec.silent,
                           think_tags=config.kimi.think_tags)
    async with turn:
        events = shape(turn.events(), options, counter)
        if not req.stream:
            return await _complete_once(req, turn, events, counter, trace)
        return await _complete_stream(request, req, turn, events, counter)


def _response_id(turn) -> str:
    """The answer's `id`: the conversation's when the client continues by answer id (seeds'
    `conversation_id`, automatic continuation), else a fresh one per answer."""
    if turn.conversation_id and not turn.plan.via_path:
        return turn.conversation_id
    return new_completion_id()


def _conversation_headers(turn) -> dict:
    headers = {}
    if turn.conversation_id and not turn.plan.auto:
        headers["X-Conversation-Id"] = turn.conversation_id
    if turn.plan.rebuilt:
        # The account holding the chat was unusable: rebuilt elsewhere from the transcript.
        headers["X-Conversation-Rebuilt"] = "true"
    return headers


async def _complete_once(req, turn, events, counter, trace) -> web.Response:
    result = await collect(events)
    trace.first_token = trace.first_token or time.monotonic()
    await turn.commit(result.text)
    body = completion_body(req, result, _response_id(turn), await usage(counter, req, result))
    return web.Response(body=orjson.dumps(body), content_type="application/json",
                        headers=_conversation_headers(turn))


async def _complete_stream(request, req, turn, events, counter) -> web.StreamResponse:
    config, trace = request.app[CONFIG], request[TRACE]
    enc = ChunkEncoder(req.model, _response_id(turn))
    texts: list[str] = []           # the content as the client received it
    reasoning: list[str] | None = [] if req.include_usage else None
    sse = SSEStream(request, keepalive=config.server.keepalive_seconds,
                    headers={"X-Request-Id": trace.request_id, **_conversation_headers(turn)})

    def encode(ev):
        if type(ev) is UsageReady:
            return enc.usage(ev.usage)
        if trace.first_token is None:
            trace.first_token = time.monotonic()
            if turn.plan.rebuilt:   # decided during failover, before anything was sent
                sse.resp.headers.update(_conversation_headers(turn))
        t = type(ev)
        if t is TextDelta:
            texts.append(ev.text)
        elif t is ReasoningDelta and reasoning is not None:
            reasoning.append(ev.text)
        return enc.event(ev)

    async def with_usage():
        # Usage is counted once, after the last event, from the pieces kept for it.
        async with aclosing(events):
            async for ev in events:
                yield ev
        yield FLUSH                     # the last pieces go out before the store write
        answer = "".join(texts)
        await turn.commit(answer)      # stored before the client is told it is done
        if reasoning is not None:
            result = ChatResult(text=answer, reasoning="".join(reasoning))
            yield UsageReady(await usage(counter, req, result))

    def in_band(e) -> bytes:
        trace.note = f"in-band-error:{e.code}"
        trace.record_error(e)
        return error_chunk(e)

    resp = await sse.run(with_usage(), encode, enc.role(), lambda: DONE, in_band)
    trace.status = 200
    if sse.disconnected:
        trace.note = "client-disconnected"
    return resp


class UsageReady:
    __slots__ = ("usage",)

    def __init__(self, usage: dict):
        self.usage = usage


async def usage(counter, req, result: ChatResult) -> dict:
    """Token estimates: prompt per message, completion = answer + reasoning."""
    prompts = [m.text for m in req.messages]
    size = sum(map(len, prompts)) + len(result.text) + len(result.reasoning)
    if size <= COUNT_INLINE_CHARS:
        return counter.usage(prompts, result.text, result.reasoning)
    return await asyncio.to_thread(counter.usage, prompts, result.text, result.reasoning)


async def models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(models_body(request.app[CATALOGUE].list())),
                        content_type="application/json")


async def model(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    for entry in models_body(request.app[CATALOGUE].list())["data"]:
        if entry["id"] == wanted:
            return web.Response(body=orjson.dumps(entry), content_type="application/json")
    raise NotFound(f"no model '{wanted}' in the catalogue (any name still works in a chat "
                   "request: unknown names fall back to the default model)", param="model",
                   code="model_not_found")


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
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/chat/completions/{conversation_id}", chat_completions_stateful)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", model)
    app.router.add_get("/v1/conversations", list_conversations)
    app.router.add_get("/v1/conversations/{conversation_id}", get_conversation)
    app.router.add_delete("/v1/conversations/{conversation_id}", delete_conversation)
