"""Error rendering, request ids and the one log line per request."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

import orjson
from aiohttp import web

from ..canonical.request import Trace
from ..errors import GatewayError

log = logging.getLogger("kimi.access")
# Client-chosen values in a log line: nothing that could forge or split a line.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _clean(value: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._:/+-]", "?", value)[:80] if value else "-"
TRACE = web.RequestKey("trace", Trace)
# Called as hook(request, trace, now) once per request, after its log line (e.g. metrics).
TRACE_HOOKS = web.AppKey("trace_hooks", list)
# Called with no arguments when the handler is done, whatever happened (e.g. closing the
# temporary files of documents decoded from the body).
CLEANUP = web.RequestKey("cleanup", list)


# How errors look on the wire, per dialect: [(matches(request), body(error) -> dict,
# status(error) -> int)]. The first that matches renders the error; the last entry is the
# default (OpenAI's shape).
ERROR_BODIES = web.AppKey("error_bodies", list)


def add_error_body(app: web.Application, matches, body, status=None) -> None:
    """A dialect's error shape, for the requests `matches(request)` says are its own;
    `status(error)` when the dialect's status differs from the error's own."""
    app.setdefault(ERROR_BODIES, []).insert(0, (matches, body, status or _own_status))


def _own_status(e: GatewayError) -> int:
    return e.status


def error_body_for(request: web.Request, e: GatewayError) -> dict:
    """The error as the request's dialect writes it (also for errors sent in band)."""
    body = next(body for matches, body, _ in request.app[ERROR_BODIES] if matches(request))
    return body(e)


def error_response(request: web.Request, e: GatewayError) -> web.Response:
    body, status = next((body, status) for matches, body, status in request.app[ERROR_BODIES]
                        if matches(request))
    headers = {"Retry-After": str(int(e.retry_after))} if e.retry_after else None
    return web.Response(status=status(e), body=orjson.dumps(body(e)),
                        content_type="application/json", headers=headers)


def _http_error(request: web.Request, e: web.HTTPException) -> GatewayError:
    message = {413: "the request body is too large",
               404: f"this gateway has no route {request.method} {_clean(request.path)} (the "
                    "homepage at / lists the APIs it serves)"}.get(e.status, e.reason)
    err = GatewayError(message, code=f"http_{e.status}")
    err.status = e.status
    return err


@web.middleware
async def errors_and_logs(request: web.Request, handler):
    given = request.headers.get("X-Request-Id", "")
    rid = given if _SAFE_ID.fullmatch(given) else secrets.token_hex(8)
    trace = Trace(request_id=rid,
                  route=f"{request.method} {request.path}", started=time.monotonic())
    request[TRACE] = trace
    request[CLEANUP] = []
    try:
        resp = await handler(request)
    except GatewayError as e:
        trace.record_error(e)
        resp = error_response(request, e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        resp = error_response(request, _http_error(request, e))
        if e.status == 405:
            resp.headers["Allow"] = e.headers.get("Allow", "")
    except asyncio.CancelledError:
        # The client went away before the response started (aiohttp cancels the handler).
        trace.status = trace.status or 499
        trace.note = trace.note or "client-disconnected"
        _finish(request, trace)
        raise
    except Exception:
        log.exception("internal error in request %s", trace.request_id)
        resp = error_response(request, GatewayError("internal error; see the gateway log for request "
                                           f"{trace.request_id}", code="internal_error"))
    finally:
        for close in request[CLEANUP]:
            close()
    trace.status = trace.status or resp.status
    if not resp.prepared:
        resp.headers["X-Request-Id"] = trace.request_id
    _finish(request, trace)
    return resp


def _finish(request: web.Request, trace: Trace) -> None:
    log_request(trace)
    now = time.monotonic()
    for hook in request.app.get(TRACE_HOOKS, ()):
        hook(request, trace, now)


def log_request(trace: Trace) -> None:
    now = time.monotonic()
    ttft = f"{(trace.first_token - trace.started) * 1000:.1f}ms" if trace.first_token else "-"
    log.info("request id=%s route=%r model=%s account=%s status=%s ttft=%s duration=%.1fms%s",
             trace.request_id, trace.route, _clean(trace.model), trace.account or "-", trace.status,
             ttft, (now - trace.started) * 1000, f" note={trace.note}" if trace.note else "")
