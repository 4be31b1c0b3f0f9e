"""Connect-RPC envelopes: 1 flag byte + 4-byte big-endian length + JSON payload."""

from __future__ import annotations

import orjson

from ..errors import UpstreamError

FLAG_END_STREAM = 0x02
MAX_FRAME_BYTES = 64 * 1024 * 1024


def encode_frame(message: dict) -> bytes:
    payload = orjson.dumps(message)
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class ConnectFrameDecoder:
    """Splits a byte stream into (flags, payload) frames, whatever the read boundaries.

    Payloads are only decoded once complete, so a multi-byte UTF-8 character cut between
    reads is never seen half.
    """

    __slots__ = ("_buf",)

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf
        if not buf and len(data) >= 5:
            # Fast path: the read starts on a frame boundary (the usual case).
            frames, rest = _split(memoryview(data))
            if rest:
                buf += rest
            return frames
        buf += data
        frames, rest = _split(memoryview(buf))
        consumed = len(buf) - len(rest)
        del rest
        if consumed:
            del buf[:consumed]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


def _split(view: memoryview) -> tuple[list[tuple[int, bytes]], memoryview]:
    frames = []
    pos, end = 0, len(view)
    while end - pos >= 5:
        size = int.from_bytes(view[pos + 1:pos + 5], "big")
        if size > MAX_FRAME_BYTES:
            raise UpstreamError(f"Kimi sent a frame of {size} bytes, over the {MAX_FRAME_BYTES} limit")
        if end - pos - 5 < size:
            break
        frames.append((view[pos], bytes(view[pos + 5:pos + 5 + size])))
        pos += 5 + size
    return frames, view[pos:]
