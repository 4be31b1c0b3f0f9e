"""Server-sent events to the client, never held back longer than one event-loop turn.

The first content goes out at once, together with the headers and the role chunk, in one
send. Later events are gathered and written together at each FLUSH event, which the chat
service sends when an upstream read is used up (one read usually carries many frames): the
profile showed one socket send per chunk as the largest single cost of a stream (about 30% of
gateway CPU), and a client cannot see the difference.
The response is prepared lazily, at the first content event, so that an error before any
content still gets its real HTTP status (and the chat service may fail over meanwhile).
While the upstream is silent (thinking, searching) a comment line keeps proxies and clients
from timing out; once that has gone out, a later error is sent in band.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing

from aiohttp import web

from ..canonical.events import FLUSH, Started
from ..errors import GatewayError

log = logging.getLogger("kimi.sse")

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",      # nginx: do not buffer this response
    "Connection": "keep-alive",
}
KEEPALIVE = b": keep-alive\n\n"
FLUSH_BYTES = 64 * 1024     # write at once past this much pending (and feel backpressure)


class _HeadersWithFirstWrite(web.StreamResponse):
    # aiohttp: a StreamResponse sends its headers on prepare() by itself; Response (this flag
    # False) holds them for the first body write. The first write follows prepare() at once
    # here, so one send carries both (the profile showed the separate send before the first
    # token). Should aiohttp rename the flag, headers simply go out separately again.
    _send_headers_immediately = False


class SSEStream:
    """`lead` goes out before anything else, keep-alives included (Anthropic's message_start
    must be the first event); `ping` is the dialect's keep-alive record, or a function that
    makes each one (Responses numbers its events)."""

    def __init__(self, request: web.Request, *, keepalive: float, headers: dict | None = None,
                 lead: bytes = b"", ping: bytes = KEEPALIVE):
        self.request = request
        self.resp = _HeadersWithFirstWrite(headers={**SSE_HEADERS, **(headers or {})})
        self.keepalive = keepalive
        self.lead, self.ping = lead, ping
        self.accepted = False
        self.last_write = time.monotonic()
        self._starting: asyncio.Lock | None = asyncio.Lock()
        self._pending: list[bytes] = []
        self._pending_size = 0

    async def _start(self) -> None:
        lock = self._starting
        if lock is None:
            return
        async with lock:
            if self._starting is not None:
                await self.resp.prepare(self.request)
                self._starting = None

    async def write(self, data: bytes) -> None:
        """The first write goes out at once (with the headers); later ones are held until
        `flush()`, which the stream calls at each FLUSH event, i.e. once per upstream read."""
        if self._starting is not None:
            lead, self.lead = self.lead, b""    # taken before the await: one writer sends it
            await self._start()
            await self.resp.write(lead + data if lead else data)
        else:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= FLUSH_BYTES:
                await self.flush()
        self.last_write = time.monotonic()

    async def flush(self) -> None:
        """Write what is pending, in one send. aiohttp writes to the transport before any
        await, so bytes leave in the order they were queued whoever flushes."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            await self.resp.write(data)

    def _tick(self) -> None:
        """A timer (no task per stream): a keep-alive once the stream is `keepalive` silent."""
        delay = self.last_write + self.keepalive - time.monotonic()
        if delay <= 0 and self.accepted:
            self._ticker = asyncio.ensure_future(self._ping())
            return
        # Not silent that long yet; or still waiting for an account or for Kimi to accept: a
        # real status may yet be sent, so nothing goes out.
        self._ticker = asyncio.get_running_loop().call_later(
            delay if delay > 0 else self.keepalive, self._tick)

    async def _ping(self) -> None:
        await self.write(self.ping() if callable(self.ping) else self.ping)
        try:
            await self.flush()
        except ConnectionResetError:
            return      # the client is gone; the stream's own next write finds out
        self._tick()

    async def run(self, events, encode, head: bytes, tail, on_error) -> web.StreamResponse:
        """Write `head` before the first content, `encode(ev)` per event, `tail()` at the end;
        `on_error(e)` gives the in-band bytes for an error after the response started."""
        self._ticker = asyncio.get_running_loop().call_later(self.keepalive, self._tick)
        self.disconnected = False
        complete = False
        try:
            async with aclosing(events):
                try:
                    async for ev in events:
                        if ev is FLUSH:
                            await self.flush()
                            continue
                        if type(ev) is Started:
                            self.accepted = True
                            continue
                        data = encode(ev)
                        if data is None:
                            continue
                        if head:
                            data, head = head + data, b""   # one send with the headers
                        await self.write(data)
                except ConnectionResetError:
                    raise       # the client is gone: not an error of ours (handled below)
                except Exception as e:
                    if self._starting is not None and not self.resp.prepared:
                        raise       # nothing sent yet: the middleware answers with a status
                    if not isinstance(e, GatewayError):
                        log.exception("internal error in a stream")
                        e = GatewayError("internal error; see the gateway log",
                                         code="internal_error")
                    await self.write(on_error(e))
            await self.write(tail())
            await self.flush()
            complete = True
            await self.resp.write_eof()
        except ConnectionResetError:
            # The client went away; closing `events` above cancelled and cleaned up upstream.
            # (A client that hangs up right after `[DONE]` got everything.)
            self.disconnected = not complete
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client hangs up; after `[DONE]` that is
            # the normal end of a stream, not a disconnect.
            if not complete:
                raise
            asyncio.current_task().uncancel()
        finally:
            self._ticker.cancel()
        return self.resp
