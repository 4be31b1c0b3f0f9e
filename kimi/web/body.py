"""Reading a JSON request body with OpenAI-style errors."""

from __future__ import annotations

import orjson
from aiohttp import web

from ..errors import InvalidRequest


async def read_json(request: web.Request):
    data = await request.read()
    if not data:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"the request body is not valid JSON ({e.args[0].split(':')[0]})",
                             code="invalid_json") from None
