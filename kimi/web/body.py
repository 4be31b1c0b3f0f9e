"""Reading a JSON request body with OpenAI-style errors."""

from __future__ import annotations

import json

import orjson
from aiohttp import web

from ..errors import InvalidRequest
from .keys import CONFIG


LARGE_BODY = 8 * 1024 * 1024


async def read_json(request: web.Request):
    data = await _read_body(request)
    if not data:
        raise InvalidRequest("the request body is empty; send a JSON object")
    if len(data) > LARGE_BODY:
        return _loads_large(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"the request body is not valid JSON ({e.args[0].split(':')[0]})",
                             code="invalid_json") from None


def _loads_large(data: bytearray):
    """A body with a base64 document inside. orjson holds the input, its own copy and the
    result at once (3x the document string); the standard parser can take a str whose bytes
    are already freed (2x). Same JSON: NaN and Infinity are refused as orjson refuses them."""
    try:
        text = data.decode("utf-8")
        data.clear()        # the caller keeps no other reference: this frees the bytes
        return json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        why = "not UTF-8" if isinstance(e, UnicodeDecodeError) else str(e).split(":")[0]
        raise InvalidRequest(f"the request body is not valid JSON ({why})",
                             code="invalid_json") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


async def _read_body(request: web.Request) -> bytearray:
    """The body in one growing buffer that dies with this call. request.read() would keep
    a second, cached copy for the request's lifetime: with a base64 document inside, that
    is more than the document itself."""
    limit = request.app[CONFIG].server.max_body_mb * 1024 * 1024
    if (request.content_length or 0) > limit:
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(limit, len(body))
    return body
