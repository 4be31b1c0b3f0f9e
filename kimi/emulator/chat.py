"""The server-streaming ``ChatService/Chat`` endpoint: request checks, chat tree, streaming."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass, field

from aiohttp import web

from .errors import CONNECT_STREAM, STATUS_CODES, connect_error, simple_error, stream_error
from .framing import FrameError, decode_single
from .state import Call, ChatRecord, EmulatorState, Fault, MessageRecord, Reply
from .stream import FrameWriter, Turn, default_search, error_object, fault_error
from .tokens import bearer, check_access

MAGIC_FAULT = re.compile(r"\[\[fault:([a-z_]+)\]\]")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def pick(obj: dict, name: str, default=None):
    """Read a proto field under its snake_case or lowerCamelCase JSON name."""
    if name in obj:
        return obj[name]
    return obj.get(camel(name), default)


class RequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class ChatRequest:
    chat_id: str | None
    parent_id: str | None
    prompt: str
    file_ids: list = field(default_factory=list)
    thinking: bool = False
    search_declared: bool = False
    scenario: str = "SCENARIO_K2D5"


def parse_request(payload: dict, strict_empty_ids: bool) -> ChatRequest:
    message = payload.get("message")
    if not isinstance(message, dict):
        raise RequestError("invalid_argument", "message is required")
    chat_id, parent_id = pick(payload, "chat_id"), pick(message, "parent_id")
    for name, value in (("chat_id", chat_id), ("parent_id", parent_id)):
        if value is not None and not isinstance(value, str):
            raise RequestError("invalid_argument", f"{name} must be a string")
        if value == "" and strict_empty_ids:
            raise RequestError("invalid_argument", f"invalid {name}: empty string")
    texts, file_ids = [], []
    for block in message.get("blocks") or []:
        if not isinstance(block, dict):
            raise RequestError("invalid_argument", "malformed block")
        if isinstance(block.get("text"), dict):
            texts.append(str(block["text"].get("content", "")))
        elif isinstance(block.get("file"), dict):
            file_ids.append(str(block["file"].get("id", "")))
    prompt = "".join(texts)
    if not prompt and not file_ids:
        raise RequestError("invalid_argument", "message has no content")
    options = payload.get("options") or {}
    tools = payload.get("tools") or []
    return ChatRequest(
        chat_id=chat_id or None, parent_id=parent_id or None, prompt=prompt, file_ids=file_ids,
        thinking=bool(options.get("thinking")) if isinstance(options, dict) else False,
        search_declared=any(isinstance(t, dict) and t.get("type") == "TOOL_TYPE_SEARCH"
                            for t in tools),
        scenario=payload.get("scenario") or message.get("scenario") or "SCENARIO_K2D5",
    )


def resolve_chat(state: EmulatorState, sub: str, req: ChatRequest) -> tuple[ChatRecord | None, str]:
    """Existing chat and parent id for a follow-up (chat None = a new chat will be made)."""
    for file_id in req.file_ids:
        record = state.files.get(file_id)
        if record is None or record.sub != sub:
            raise RequestError("invalid_argument", f"unknown file id {file_id!r}")
    if req.chat_id is None:
        return None, ""
    chat = state.chats.get(req.chat_id)
    if chat is None or chat.deleted:
        raise RequestError("not_found", "chat not found")
    if chat.sub != sub:
        raise RequestError("permission_denied", "chat belongs to another user")
    if req.parent_id is None:
        return chat, chat.messages[-1].id if chat.messages else chat.id
    if req.parent_id != chat.id and chat.message(req.parent_id) is None:
        raise RequestError("invalid_argument", "parent message not found in chat")
    return chat, req.parent_id


async def auth_failure(request: web.Request, state: EmulatorState, why: str) -> web.StreamResponse:
    if state.auth_error_style == "stream":
        return await stream_error(request, error_object(
            "unauthenticated", why, "REASON_INVALID_AUTH_TOKEN"))
    return connect_error(401, "unauthenticated", why)


def choose_reply(state: EmulatorState, prompt: str) -> Reply:
    """The first queued reply this prompt may take (see ``Reply.when``), else the default."""
    reply = Reply()
    for i, queued in enumerate(state.replies):
        if queued.when is None or queued.when in prompt:
            reply = queued
            del state.replies[i]
            break
    if reply.fault is None and (match := MAGIC_FAULT.search(prompt)):
        reply = dataclasses.replace(reply, fault=Fault(match.group(1)))
    return reply


async def handle_chat(request: web.Request, state: EmulatorState, call: Call) -> web.StreamResponse:
    body = await request.read()
    try:
        payload = decode_single(body)
    except FrameError as exc:
        payload, frame_problem = None, str(exc)
    else:
        call.body = payload
        state.chat_requests.append(payload)
    sub, why = check_access(bearer(request.headers), state.revoked_subs, state.revoked_tokens)
    if sub is None:
        return await auth_failure(request, state, why)
    if payload is None:
        if state.bad_frame_style == "stream":
            return await stream_error(request, simple_error("invalid_argument", frame_problem))
        return connect_error(400, "invalid_argument", frame_problem)
    try:
        req = parse_request(payload, state.strict_empty_ids)
        chat, parent_id = resolve_chat(state, sub, req)
    except RequestError as exc:
        return await stream_error(request, simple_error(exc.code, exc.message))
    if state.reject_concurrent and state.active_streams.get(sub, 0) > 0:
        error = {"error": {"code": "failed_precondition", "message": "another stream is in progress",
                           "details": [{"debug": {"reason": "REASON_CHAT_STREAM_PUSHING"}}]}}
        return await stream_error(request, error, data_frame=True)
    reply = choose_reply(state, req.prompt)
    fault = reply.fault
    if fault and fault.kind == "http":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        state.last_reply = reply
        return connect_error(fault.status, fault.code or STATUS_CODES.get(fault.status, "unknown"),
                             fault.message or f"emulated HTTP {fault.status}", headers)
    if fault and fault.kind == "error" and not fault.prelude:
        state.last_reply = dataclasses.replace(reply, text="", think="")
        return await stream_error(request, fault_error(fault), heartbeat=True,
                                  data_frame=fault.where != "endstream")
    return await run_stream(request, state, sub, req, chat, parent_id, reply)


async def run_stream(request: web.Request, state: EmulatorState, sub: str, req: ChatRequest,
                     chat: ChatRecord | None, parent_id: str, reply: Reply) -> web.StreamResponse:
    if chat is None:
        chat = ChatRecord(id=state.new_id(), sub=sub)
        state.chats[chat.id] = chat
        parent_id = chat.id
    user = MessageRecord(id=state.new_id(), parent_id=parent_id, role="user", text=req.prompt,
                         files=list(req.file_ids))
    assistant = MessageRecord(id=state.new_id(), parent_id=user.id, role="assistant",
                              status="MESSAGE_STATUS_GENERATING")
    chat.messages += [user, assistant]
    chat.update_time = assistant.create_time
    search = None
    if req.search_declared:
        if reply.search is not None:
            search = reply.search or None
        elif re.search(r"search|latest", req.prompt, re.IGNORECASE):
            search = default_search(req.prompt)
    resp = web.StreamResponse(status=200, headers={"Content-Type": CONNECT_STREAM})
    await resp.prepare(request)
    cancel = asyncio.Event()
    state.streams[chat.id] = cancel
    state.stream_started(sub)
    turn = Turn(writer=FrameWriter(request, resp, state, reply.fault, cancel), state=state,
                chat=chat, user=user, assistant=assistant, reply=reply, prompt=req.prompt,
                scenario=req.scenario, thinking=req.thinking, search=search,
                files=[state.files[i] for i in req.file_ids])
    try:
        await turn.run()
    except ConnectionError:
        pass  # the client went away, or the truncate fault closed the connection
    finally:
        state.stream_ended(sub)
        if state.streams.get(chat.id) is cancel:
            del state.streams[chat.id]
        state.last_reply = dataclasses.replace(
            reply, text=assistant.text, think=assistant.think if req.thinking else None,
            search=search, chat_id=chat.id, message_id=assistant.id)
    return resp
