"""Reading a JSON request body with OpenAI-style errors."""

from __future__ import annotations

import json

import orjson
from aiohttp import web

from ..errors import InvalidRequest
from .inline import RAW_KEYS, BodyScanner
from .keys import CONFIG
from .middleware import CLEANUP

LARGE_BODY = 8 * 1024 * 1024
CHUNK = 256 * 1024


async def read_json(request: web.Request, claim=None, raw_keys: tuple[bytes, ...] = RAW_KEYS):
    """The parsed body. Large base64 data URLs in it (and values of the `raw_keys` members,
    plain base64) are decoded while it streams in (web/inline.py); `claim(body, take)` calls
    take(container, key) where the caller wants such a value to stay decoded (an
    InlinePayload, closed when the request ends). Every other one is put back as the text it
    was."""
    scanner = BodyScanner(request.app[CONFIG].files.max_mb * 1024 * 1024, raw_keys)
    try:
        size = await _read_body(request, scanner)
        if not size:
            raise InvalidRequest("the request body is empty; send a JSON object")
        # The parser a body of this size always had, so its errors read the same.
        body = _loads_large(scanner.out) if size > LARGE_BODY else _loads(scanner.out)
        if scanner.payloads:
            if claim is not None:
                claim(body, scanner.take)
            scanner.restore(body)
    except BaseException:
        scanner.close()
        raise
    request[CLEANUP].append(scanner.close)
    return body


def _loads(data: bytearray):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"the request body is not valid JSON ({e.args[0].split(':')[0]})",
                             code="invalid_json") from None


def _loads_large(data: bytearray):
    """A large body (a long text, or a document sent in a form the scanner leaves as text).
    orjson holds the input, its own copy and the result at once (3x the document string); the
    standard parser can take a str whose bytes are already freed (2x). Same JSON: NaN and
    Infinity are refused as orjson refuses them."""
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


async def _read_body(request: web.Request, scanner: BodyScanner) -> int:
    """Streams the body through the scanner (request.read() would keep the whole body, and
    cache a second copy for the request's lifetime); its size in bytes."""
    limit = request.app[CONFIG].server.max_body_mb * 1024 * 1024
    if (request.content_length or 0) > limit:
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(limit, size)
        scanner.feed(chunk)
    scanner.finish()
    return size
