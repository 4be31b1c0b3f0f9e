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
    config, service, trace = request.app[CONFIG], request.app[SERVICE], request[TRACE]
    req = decode_chat_request(await read_json(request))
    trace.model = req.model
    caller = authenticate(request, config.server.api_keys, bool(service.pool.accounts))
    events = service.stream(req, service.accounts_for(list(caller.kimi_tokens)), trace)
    if not req.stream:
        result = await collect(events)
        trace.first_token = trace.first_token or time.monotonic()
        cid = new_completion_id()
        body = completion_body(req, result, cid, estimate_usage(_prompt_text(req), result))
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    enc = ChunkEncoder(req.model)
    out = [] if req.include_usage else None

    def encode(ev):
        if trace.first_token is None:
            trace.first_token = time.monotonic()
        if out is not None and type(ev) in (TextDelta, ReasoningDelta):
            out.append(ev)
        return enc.event(ev)

    def tail() -> bytes:
        if out is None:
            return DONE
        result = ChatResult(text="".join(e.text for e in out if type(e) is TextDelta),
                            reasoning="".join(e.text for e in out if type(e) is ReasoningDelta))
        return enc.usage(estimate_usage(_prompt_text(req), result)) + DONE

    sse = SSEStream(request, keepalive=config.server.keepalive_seconds,
                    headers={"X-Request-Id": trace.request_id})
    def in_band(e) -> bytes:
        trace.note = f"in-band-error:{e.code}"
        trace.record_error(e)
        return error_chunk(e)

    resp = await sse.run(events, encode, enc.role(), tail, in_band)
    trace.status = 200
    if sse.disconnected:
        trace.note = "client-disconnected"
    return resp


def _prompt_text(req) -> str:
    return "\n".join(m.text for m in req.messages)


async def models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(models_body(list_models())),
                        content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
