"""OpenAI-compatible routes: decode, call the chat service, encode. Nothing else."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import orjson
from aiohttp import web

from ..canonical.events import ChatResult, ReasoningDelta, TextDelta, collect
from ..canonical.shaping import ShapeOptions, shape
from ..web.auth import authenticate
from ..web.body import read_json
from ..web.keys import CATALOGUE, CONFIG, SERVICE, TOKEN_COUNTER
from ..web.middleware import TRACE
from ..web.sse import SSEStream
from .openai_wire import (DONE, ChunkEncoder, completion_body, decode_chat_request,
                          error_chunk, models_body, new_completion_id)

# Texts longer than this are counted off the event loop (about 1 ms per 40 KB).
COUNT_INLINE_CHARS = 32 * 1024


async def chat_completions(request: web.Request) -> web.StreamResponse:
    config, service, trace = request.app[CONFIG], request.app[SERVICE], request[TRACE]
    req = decode_chat_request(await read_json(request), request.app[CATALOGUE].resolve)
    trace.model = req.model
    caller = authenticate(request, config.server.api_keys, bool(service.pool.accounts))
    counter = request.app[TOKEN_COUNTER]
    options = ShapeOptions(stop=req.stop, max_tokens=req.max_tokens, silent=req.spec.silent,
                           think_tags=config.kimi.think_tags)
    events = shape(service.stream(req, service.accounts_for(list(caller.kimi_tokens)), trace),
                   options, counter)
    if not req.stream:
        result = await collect(events)
        trace.first_token = trace.first_token or time.monotonic()
        cid = new_completion_id()
        body = completion_body(req, result, cid, await usage(counter, req, result))
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    return await _stream(request, req, events, counter)


async def _stream(request: web.Request, req, events, counter) -> web.StreamResponse:
    config, trace = request.app[CONFIG], request[TRACE]
    enc = ChunkEncoder(req.model)
    kept = [] if req.include_usage else None

    def encode(ev):
        if type(ev) is UsageReady:
            return enc.usage(ev.usage)
        if trace.first_token is None:
            trace.first_token = time.monotonic()
        if kept is not None and type(ev) in (TextDelta, ReasoningDelta):
            kept.append(ev)
        return enc.event(ev)

    async def with_usage():
        # Usage is counted once, after the last event, from the pieces kept for it.
        async with aclosing(events):
            async for ev in events:
                yield ev
        if kept is not None:
            result = ChatResult(text="".join(e.text for e in kept if type(e) is TextDelta),
                                reasoning="".join(e.text for e in kept if type(e) is ReasoningDelta))
            yield UsageReady(await usage(counter, req, result))

    def in_band(e) -> bytes:
        trace.note = f"in-band-error:{e.code}"
        return error_chunk(e)

    sse = SSEStream(request, keepalive=config.server.keepalive_seconds,
                    headers={"X-Request-Id": trace.request_id})
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


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
