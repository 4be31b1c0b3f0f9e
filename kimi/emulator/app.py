"""aiohttp application: one catch-all route dispatching every emulated path."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from . import auth, files
from .chat import handle_chat
from .errors import connect_error
from .spelling import spelled
from .state import Call, EmulatorState
from .tokens import bearer, check_access
from .unary import UNARY

EMULATOR = web.AppKey("emulator", EmulatorState)
CHAT_PATH = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
POST_PATHS = {CHAT_PATH, auth.REFRESH, files.UPLOAD, files.PARSE_PROGRESS, *UNARY}


def create_app(state: EmulatorState | None = None) -> web.Application:
    """The emulator app (chat host and auth host in one); ``app[EMULATOR]`` is the state."""
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app[EMULATOR] = state if state is not None else EmulatorState()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def json_result(result, style: str = "camel") -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    return web.Response(body=orjson.dumps(spelled(result, style)), content_type="application/json")


def not_allowed(allowed: str) -> web.Response:
    return connect_error(405, "unimplemented", "method not allowed", {"Allow": allowed})


async def read_json(request: web.Request, call: Call):
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return connect_error(400, "invalid_argument", "request body is not JSON")
    if not isinstance(body, dict):
        return connect_error(400, "invalid_argument", "request body is not a JSON object")
    call.body = body
    return body


async def dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[EMULATOR]
    path = request.path
    call = Call(path, request.method, dict(request.headers), None, time.monotonic())
    state.calls.append(call)
    state.saw_connection(request.protocol)
    if state.call_delay > 0:
        await asyncio.sleep(state.call_delay)
    if path.startswith(files.SIGN_OBJ) or path == auth.LEGACY_REFRESH:
        if request.method not in ("GET", "HEAD"):
            return not_allowed("GET")
        if path == auth.LEGACY_REFRESH:
            return json_result(auth.legacy_refresh(state, request))
        return await files.sign_obj(request, state)
    if path not in POST_PATHS:
        return connect_error(404, "not_found", f"no such method: {path}")
    if request.method != "POST":
        return not_allowed("POST")
    if path == CHAT_PATH:
        return await handle_chat(request, state, call)
    if path == auth.REFRESH:
        body = await read_json(request, call)
        return json_result(body if isinstance(body, web.Response)
                           else auth.gateway_refresh(state, body), state.field_names)
    sub, why = check_access(bearer(request.headers), state.revoked_subs, state.revoked_tokens)
    if sub is None:
        return connect_error(401, "unauthenticated", why)
    if path == files.UPLOAD:
        return await files.upload(request, state, sub)
    body = await read_json(request, call)
    if isinstance(body, web.Response):
        return body
    if path == files.PARSE_PROGRESS:
        return json_result(files.parse_progress(state, sub, body), state.field_names)
    return json_result(UNARY[path](state, sub, body), state.field_names)
