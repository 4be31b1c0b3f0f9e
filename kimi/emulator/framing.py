"""Connect envelope framing: [flags:1][length:4, big-endian][JSON payload]."""

from __future__ import annotations

import struct

import orjson

DATA = 0x00
END_STREAM = 0x02


def encode_frame(obj, flag: int = DATA) -> bytes:
    payload = orjson.dumps(obj)
    return struct.pack(">BI", flag, len(payload)) + payload


class FrameError(ValueError):
    """The request body is not exactly one uncompressed Connect envelope of a JSON object."""


def decode_single(body: bytes) -> dict:
    if len(body) < 5:
        raise FrameError("request body is not a Connect envelope")
    flag, length = struct.unpack(">BI", body[:5])
    if flag != DATA:
        raise FrameError(f"unexpected envelope flags 0x{flag:02x}")
    if len(body) != 5 + length:
        raise FrameError("envelope length does not match the request body")
    try:
        obj = orjson.loads(body[5:])
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"envelope payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError("envelope payload is not a JSON object")
    return obj
