"""What every dialect's chat route does around the turn: start it for the caller, and run
its events through the dialect's encoder onto the wire. Dialects share this, never each
other's code."""

from __future__ import annotations

import time

from aiohttp import web

from ..canonical.events import Usage
from ..canonical.request import ChatRequest
from ..chat.turn import count_prompt
from ..web.auth import caller_of
from ..web.keys import CONFIG, SERVICE, TOKEN_COUNTER
from ..web.middleware import TRACE
from ..web.sse import KEEPALIVE, SSEStream


async def open_turn(request: web.Request, req: ChatRequest, dialect: str,
                    path_id: str | None = None):
    """The caller's turn (use as `async with`). The caller is checked before the body is
    read (no work for strangers): call `caller_of(request)` first, as routes do."""
    trace = request[TRACE]
    trace.dialect, trace.model = dialect, req.model
    caller = caller_of(request)
    return await request.app[SERVICE].turn(req, scope=caller.scope,
                                           client_tokens=list(caller.kimi_tokens),
                                           path_id=path_id, trace=trace)


async def prompt_tokens(request: web.Request, req: ChatRequest) -> int:
    """The estimate of the whole logical prompt that the turn's usage reports, known before
    the turn runs (for a stream's first event, or a token-count endpoint)."""
    return await count_prompt(request.app[TOKEN_COUNTER], req)


def conversation_headers(turn) -> dict:
    headers = {}
    if turn.conversation_id and not turn.plan.auto:
        headers["X-Conversation-Id"] = turn.conversation_id
    if turn.plan.rebuilt:
        # The account holding the chat was unusable: rebuilt elsewhere from the transcript.
        headers["X-Conversation-Rebuilt"] = "true"
    return headers


def first_token(request: web.Request) -> None:
    trace = request[TRACE]
    trace.first_token = trace.first_token or time.monotonic()


async def stream_turn(request: web.Request, turn, encode, *, head: bytes = b"",
                      tail=lambda: b"", in_band, headers: dict | None = None,
                      lead: bytes = b"", ping=KEEPALIVE) -> web.StreamResponse:
    """The turn's events as server-sent events: `head` before the first content,
    `encode(ev)` per event, `tail()` at the end, `in_band(error)` for an error after the
    response started; `lead` before anything, keep-alives included, and `ping` as the
    keep-alive record (default: an SSE comment), or a function that makes each one."""
    trace = request[TRACE]
    sse = SSEStream(request, keepalive=request.app[CONFIG].server.keepalive_seconds,
                    headers={"X-Request-Id": trace.request_id, **conversation_headers(turn),
                             **(headers or {})}, lead=lead, ping=ping)

    def on_event(ev):
        if trace.first_token is None and type(ev) is not Usage:
            trace.first_token = time.monotonic()
            if turn.plan.rebuilt:   # decided during failover, before anything was sent
                sse.resp.headers.update(conversation_headers(turn))
        return encode(ev)

    def on_error(e) -> bytes:
        trace.note = f"in-band-error:{e.code}"
        trace.record_error(e)
        return in_band(e)

    resp = await sse.run(turn.events(), on_event, head, tail, on_error)
    trace.status = 200
    if sse.disconnected:
        trace.note = "client-disconnected"
    return resp
