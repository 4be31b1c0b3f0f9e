"""OpenAI's legacy text completions route: decode, run the turn, encode."""

from __future__ import annotations

import orjson
from aiohttp import web

from ...canonical.events import collect
from ...web.auth import caller_of
from ...web.body import read_json
from ...web.keys import CATALOGUE
from ...web.middleware import error_body_for
from ..turns import conversation_headers, first_token, open_turn, stream_turn
from .decode import decode_completion
from .encode import DONE, ChunkEncoder, completion_body, new_completion_id


async def completions(request: web.Request) -> web.StreamResponse:
    caller_of(request)      # before the body is read: no work for strangers
    legacy = decode_completion(await read_json(request), request.app[CATALOGUE].resolve)
    req, prefix = legacy.chat, legacy.prompt if legacy.echo else ""
    async with await open_turn(request, req, "completions") as turn:
        if req.stream:
            enc = ChunkEncoder(req.model, new_completion_id())
            return await stream_turn(
                request, turn, enc.event, head=enc.chunk(prefix) if prefix else b"",
                tail=lambda: DONE,
                in_band=lambda e: b"data: " + orjson.dumps(error_body_for(request, e)) + b"\n\n")
        result = await collect(turn.events())
        first_token(request)
        body = completion_body(req.model, new_completion_id(), result, prefix)
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            headers=conversation_headers(turn))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/completions", completions)     # clients that drop the /v1
