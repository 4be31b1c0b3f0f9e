"""The two bench clients: a bare Connect client straight to the emulator ("direct", the
physical limit) and an OpenAI SSE client through the gateway. Neither imports kimi.upstream:
the direct line must not share the gateway's code.

Both parse every frame/event with orjson, so their own cost is alike; both time from just
before the POST to the first non-empty content piece.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
import orjson

# Kimi: the streaming call and its envelope (protocol reference, sections 4.2-4.4).
CHAT_PATH = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
CHAT_COMPLETIONS = "/v1/chat/completions"
END_STREAM = 0x02


@dataclass
class Result:
    ttfc: float | None = None     # seconds from the POST to the first content piece
    first_at: float | None = None  # monotonic time of that piece
    chunks: int = 0               # content pieces received
    ok: bool = False              # the stream ended cleanly ([DONE] / end-stream without error)


def connect_body(prompt: str) -> bytes:
    payload = orjson.dumps({
        "scenario": "SCENARIO_K2D5", "options": {"thinking": False},
        "message": {"role": "user", "scenario": "SCENARIO_K2D5",
                    "blocks": [{"message_id": "", "text": {"content": prompt}}]}})
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def connect_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/connect+json",
            "Connect-Protocol-Version": "1"}


def split_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Remove and return the complete Connect frames at the front of `buf`."""
    frames, pos = [], 0
    while len(buf) - pos >= 5:
        size = int.from_bytes(buf[pos + 1:pos + 5], "big")
        if len(buf) - pos - 5 < size:
            break
        frames.append((buf[pos], bytes(buf[pos + 5:pos + 5 + size])))
        pos += 5 + size
    del buf[:pos]
    return frames


def frame_text(obj: dict) -> str:
    block = obj.get("block")
    if not block:
        return ""
    return ((block.get("text") or {}).get("content")) or ""


async def direct_stream(session: aiohttp.ClientSession, url: str, token: str,
                        prompt: str) -> Result:
    res, buf = Result(), bytearray()
    t0 = time.monotonic()
    async with session.post(url + CHAT_PATH, data=connect_body(prompt),
                            headers=connect_headers(token)) as resp:
        async for data in resp.content.iter_any():
            buf += data
            for flags, body in split_frames(buf):
                obj = orjson.loads(body) if body else {}
                if flags & END_STREAM:
                    res.ok = resp.status == 200 and not obj.get("error")
                    return res
                if frame_text(obj):
                    _count(res, t0)
    return res


def sse_events(buf: bytearray) -> list[bytes]:
    """Remove and return the complete `data:` payloads at the front of `buf`."""
    out = []
    end = buf.rfind(b"\n\n")
    if end < 0:
        return out
    for event in bytes(buf[:end]).split(b"\n\n"):
        if event.startswith(b"data: "):
            out.append(event[6:])
    del buf[:end + 2]
    return out


def sse_text(event: bytes) -> str:
    obj = orjson.loads(event)
    choices = obj.get("choices") or ({},)
    return (choices[0].get("delta") or {}).get("content") or ""


async def gateway_stream(session: aiohttp.ClientSession, url: str, prompt: str,
                         on_first=None) -> Result:
    res, buf = Result(), bytearray()
    body = orjson.dumps({"model": "kimi", "stream": True,
                         "messages": [{"role": "user", "content": prompt}]})
    t0 = time.monotonic()
    async with session.post(url + CHAT_COMPLETIONS, data=body, headers=GATEWAY_HEADERS) as resp:
        async for data in resp.content.iter_any():
            buf += data
            for event in sse_events(buf):
                if event == b"[DONE]":
                    res.ok = resp.status == 200
                    return res
                if sse_text(event):
                    _count(res, t0)
                    if on_first is not None and res.chunks == 1:
                        on_first()
    return res


async def gateway_unary(session: aiohttp.ClientSession, url: str, prompt: str) -> bool:
    body = orjson.dumps({"model": "kimi", "messages": [{"role": "user", "content": prompt}]})
    async with session.post(url + CHAT_COMPLETIONS, data=body, headers=GATEWAY_HEADERS) as resp:
        data = await resp.read()
    return resp.status == 200 and bool(orjson.loads(data)["choices"][0]["message"]["content"])


# Not a Kimi JWT: the gateway serves it with its own configured accounts.
GATEWAY_HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


def _count(res: Result, t0: float) -> None:
    res.chunks += 1
    if res.ttfc is None:
        res.first_at = time.monotonic()
        res.ttfc = res.first_at - t0


def new_session() -> aiohttp.ClientSession:
    # No connection limit and no timeout: the bench decides how many requests are open. Idle
    # connections are dropped before the gateway's own 20 s would close them under a request.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=10),
                                 timeout=aiohttp.ClientTimeout(total=None))
