"""Reading a JSON request body with OpenAI-style errors."""

from __future__ import annotations

import json
import re
from types import MappingProxyType

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from ..errors import InvalidRequest, PayloadTooLarge
from .inline import INLINE_MIN, RAW_KEYS, BodyScanner
from .keys import BODY_BUDGET, CONFIG
from .middleware import CLEANUP

LARGE_BODY = 8 * 1024 * 1024
CHUNK = 256 * 1024
# Deeper than any real request (JSON schemas of tools included); deeper structures would
# overflow a recursive encoder (orjson stops at 255) or the standard parser's stack.
MAX_DEPTH = 128
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


async def read_json(request: web.Request, claim=None, raw_keys: tuple[bytes, ...] = RAW_KEYS):
    """The parsed body. Large base64 data URLs in it (and values of the `raw_keys` members,
    plain base64) are decoded while it streams in (web/inline.py); `claim(body, take)` calls
    take(container, key) where the caller wants such a value to stay decoded (an
    InlinePayload, closed when the request ends). Every other one is put back as the text it
    was."""
    if request.content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        raise InvalidRequest(f"this endpoint takes a JSON body, not {request.content_type}: send "
                             "JSON with 'Content-Type: application/json' (files go inside it as "
                             "data: URLs or file_data)", code="unsupported_content_type")
    small = (request.content_length or INLINE_MIN + 1) <= INLINE_MIN \
        and "Content-Encoding" not in request.headers
    scanner = _Plain() if small else \
        BodyScanner(request.app[CONFIG].files.max_mb * 1024 * 1024, raw_keys)
    try:
        size = await _read_body(request, scanner)
        if not size:
            raise InvalidRequest("the request body is empty; send a JSON object")
        # A short body with fewer brackets than MAX_DEPTH cannot nest deeper.
        deep = not small or scanner.out.count(b"[") + scanner.out.count(b"{") > MAX_DEPTH
        # The parser a body of this size always had, so its errors read the same.
        body = _loads_large(scanner.out) if size > LARGE_BODY else _loads(scanner.out)
        if deep:
            check_depth(body)
        if scanner.payloads:
            if claim is not None:
                claim(body, scanner.take)
            scanner.restore(body)
    except BaseException:
        scanner.close()
        raise
    request[CLEANUP].append(scanner.close)
    return body


class _Plain:
    """A body too short to hold a value BodyScanner would take out (INLINE_MIN): kept as
    it is read, with nothing to restore."""

    payloads = MappingProxyType({})     # none, ever (read-only: shared by every body)

    def __init__(self):
        self.out = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.out += chunk

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


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
    Infinity are refused as orjson refuses them, and so are lone surrogates (the standard
    parser lets `\\ud800` through, and no encoder can write it out again)."""
    try:
        text = data.decode("utf-8")
        data.clear()        # the caller keeps no other reference: this frees the bytes
        body = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        why = ("not UTF-8" if isinstance(e, UnicodeDecodeError) else
               "nested too deeply" if isinstance(e, RecursionError) else str(e).split(":")[0])
        raise InvalidRequest(f"the request body is not valid JSON ({why})",
                             code="invalid_json") from None
    if _SURROGATE_ESCAPE.search(text):
        del text
        _refuse_lone_surrogates(body)
    return body


def check_depth(body) -> None:
    """Walks containers without recursion: a 400 for a body nested deeper than MAX_DEPTH."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"the request body is nested too deeply (more than {MAX_DEPTH} "
                                 "levels of arrays and objects)", code="invalid_json")
        # A bare scalar body (`1`, `null`) has no children: the route's decoder refuses it.
        children = value.values() if isinstance(value, dict) else \
            value if isinstance(value, list) else ()
        stack.extend((v, depth + 1) for v in children if isinstance(v, (dict, list)))


def _refuse_lone_surrogates(body) -> None:
    stack = [body]
    while stack:
        value = stack.pop()
        items = value.items() if isinstance(value, dict) else \
            enumerate(value if isinstance(value, list) else [value])
        for key, v in items:
            for text in (key, v):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise InvalidRequest("the request body is not valid JSON (a lone "
                                             "surrogate in a string)", code="invalid_json") from None
            if isinstance(v, (dict, list)):
                stack.append(v)


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


async def _read_body(request: web.Request, scanner: BodyScanner) -> int:
    """Streams the body through the scanner (request.read() would keep the whole body, and
    cache a second copy for the request's lifetime); its size in bytes. The memory it will
    take is reserved from the app's body budget as it arrives, until the request ends."""
    limit = request.app[CONFIG].server.max_body_mb * 1024 * 1024
    declared = request.content_length or 0
    if declared > limit:
        raise _too_large(declared, limit)
    held = _Reservation(request.app[BODY_BUDGET])
    request[CLEANUP].append(held.release)
    held.take(declared)
    size = 0
    try:
        # A compressed body (Content-Encoding gzip, deflate, zstd) arrives decompressed a
        # piece at a time, so the limit holds for the decompressed size and a bomb stops
        # at the limit.
        async for chunk in request.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, so_far=True)
            if size > declared:
                held.take(len(chunk))
            scanner.feed(chunk)
    except RequestPayloadError:
        encoding = request.headers.get("Content-Encoding")
        raise InvalidRequest(f"the request body is not valid {encoding} data" if encoding else
                             "the request body could not be read", code="invalid_body") from None
    scanner.finish()
    return size


class _Reservation:
    def __init__(self, budget):
        self.budget, self.amount = budget, 0

    def take(self, body_bytes: int) -> None:
        if body_bytes:
            self.amount += self.budget.reserve(body_bytes)

    def release(self) -> None:
        self.budget.release(self.amount)
        self.amount = 0


def _too_large(size: int, limit: int, so_far: bool = False) -> PayloadTooLarge:
    mib = 1024 * 1024
    return PayloadTooLarge(f"the request body is {'over ' if so_far else ''}{size / mib:.1f} MiB, "
                           f"more than [server] max_body_mb = {limit // mib}",
                           code="body_too_large")
