"""Reading a JSON request body with OpenAI-style errors."""

from __future__ import annotations

import orjson
from aiohttp import web

from ..errors import InvalidRequest
from .keys import CONFIG


async def read_json(request: web.Request):
    data = await _read_body(request)
    if not data:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"the request body is not valid JSON ({e.args[0].split(':')[0]})",
                             code="invalid_json") from None


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
