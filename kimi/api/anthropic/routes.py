"""Anthropic Messages routes: decode, run the turn, encode. Query strings (Claude Code's
`?beta=true`) mean nothing here; `/messages` and `/anthropic/v1/...` serve clients whose base
URL lacks or carries a prefix."""

from __future__ import annotations

import orjson
from aiohttp import web

from ...canonical.events import ChatResult, Finish, FinishReason, Usage, collect
from ...errors import NotFound
from ...web.auth import caller_of
from ...web.body import read_json
from ...web.keys import CATALOGUE, CONFIG
from ...web.middleware import add_error_body
from ..models import add_models_shape
from ..turns import conversation_headers, first_token, open_turn, prompt_tokens, stream_turn
from .content import claim_inline_data
from .decode import FAMILIES, Decoded, decode_messages_request, family_of
from .encode import (PING, MessageStreamEncoder, error_body, error_status, message_body,
                     model_entry, models_body, new_message_id)

PREFIXES = ("", "/anthropic")
# What /v1/models lists first: Claude Code keeps only ids that start with "claude".
# Anthropic's base64 sources carry plain base64 under "data": decoded while the body is read.
RAW_BASE64 = (b"data",)
LISTED = {"opus": "claude-opus-5-5", "sonnet": "claude-sonnet-5-5", "haiku": "claude-haiku-5-5"}


def is_anthropic(request: web.Request) -> bool:
    """Requests whose answers (errors included) take Anthropic's shape: the Messages paths,
    and on shared paths the headers only Anthropic clients send."""
    path = request.path
    if path.startswith(("/v1/messages", "/messages", "/anthropic/")):
        return True
    return path.startswith("/v1/models") and ("anthropic-version" in request.headers
                                              or "x-api-key" in request.headers)


async def messages(request: web.Request) -> web.StreamResponse:
    caller_of(request)      # before the body is read: no work for strangers
    decoded = _decode(await read_json(request, claim_inline_data, RAW_BASE64), request.app)
    req = decoded.req
    input_tokens = await prompt_tokens(request, req)
    message_id = new_message_id()
    if decoded.max_tokens is not None and decoded.max_tokens <= 1:
        return _without_upstream(decoded, message_id, input_tokens)
    async with await open_turn(request, req, "anthropic") as turn:
        if req.stream:
            enc = MessageStreamEncoder(req.model, message_id, input_tokens,
                                       show_thinking=decoded.show_thinking,
                                       search_query=decoded.search_query)
            return await stream_turn(request, turn, enc.event, tail=enc.tail,
                                     in_band=enc.error, lead=enc.start(), ping=PING)
        result = await collect(turn.events())
        first_token(request)
        body = message_body(req.model, result, message_id, show_thinking=decoded.show_thinking,
                            search_query=decoded.search_query)
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            headers=conversation_headers(turn))


def _without_upstream(decoded: Decoded, message_id: str, input_tokens: int) -> web.Response:
    """max_tokens 0 (Claude Code's cache pre-warm) or 1 (its quota probe): an answer with no
    room for text, so no Kimi round is spent on it."""
    req = decoded.req
    if not req.stream:
        result = ChatResult(finish_reason=FinishReason.LENGTH, usage=Usage(input_tokens, 0))
        return web.Response(body=orjson.dumps(message_body(req.model, result, message_id,
                                                           show_thinking=False)),
                            content_type="application/json")
    enc = MessageStreamEncoder(req.model, message_id, input_tokens, show_thinking=False)
    data = enc.start() + enc.event(Finish(FinishReason.LENGTH)) + enc.event(Usage(input_tokens, 0))
    return web.Response(body=data, content_type="text/event-stream")


async def count_tokens(request: web.Request) -> web.Response:
    caller_of(request)
    decoded = _decode(await read_json(request, claim_inline_data, RAW_BASE64), request.app,
                      count_only=True)
    body = {"input_tokens": await prompt_tokens(request, decoded.req)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _decode(body, app: web.Application, count_only: bool = False) -> Decoded:
    config = app[CONFIG].anthropic
    aliases = {family: getattr(config, family) for family in FAMILIES}
    return decode_messages_request(body, app[CATALOGUE].resolve, aliases, count_only=count_only)


# --- models --------------------------------------------------------------------------------

def _models(request: web.Request) -> dict:
    config = request.app[CONFIG].anthropic
    entries = [model_entry(name, f"Kimi ({getattr(config, family)}) as Claude {family}")
               for family, name in LISTED.items()]
    entries += [model_entry(s.id, s.description or s.id)
                for s in request.app[CATALOGUE].list()]
    return models_body(entries)


def _model(request: web.Request, wanted: str) -> dict | None:
    found = next((e for e in _models(request)["data"] if e["id"] == wanted), None)
    family = family_of(wanted)
    if found is None and family is not None:
        # Every Claude name of a family works in a request, so each one exists.
        found = model_entry(wanted, f"Kimi ({getattr(request.app[CONFIG].anthropic, family)}) "
                                    f"as Claude {family}")
    return found


async def models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(_models(request)), content_type="application/json")


async def model(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    entry = _model(request, wanted)
    if entry is None:
        raise NotFound(f"model: {wanted}", param="model", code="model_not_found")
    return web.Response(body=orjson.dumps(entry), content_type="application/json")


def add_routes(app: web.Application) -> None:
    add_error_body(app, is_anthropic, error_body, error_status)
    add_models_shape(app, is_anthropic, _models, _model)
    for prefix in PREFIXES:
        app.router.add_post(prefix + "/v1/messages", messages)
        app.router.add_post(prefix + "/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/messages", messages)
    app.router.add_post("/messages/count_tokens", count_tokens)
    app.router.add_get("/anthropic/v1/models", models)
    app.router.add_get("/anthropic/v1/models/{model}", model)
