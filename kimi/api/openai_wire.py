"""OpenAI Chat Completions: request decoding and response encoding (pure, no I/O)."""

from __future__ import annotations

import time
import uuid

import orjson

from ..canonical.events import ChatResult, Citation, Finish, ReasoningDelta, TextDelta
from ..canonical.models import resolve_model
from ..canonical.request import Attachment, ChatRequest, Message
from ..errors import GatewayError, InvalidRequest
from .openai_options import apply_thinking, decode_limits
from .openai_attachments import ATTACHMENT_TYPES, decode_attachment

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def decode_chat_request(body, resolve=resolve_model) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model", "kimi")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    stream = _bool(body, "stream")
    use_search = _bool(body, "use_search")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    include_usage = bool(options and options.get("include_usage"))
    conversation_id = body.get("conversation_id")
    if conversation_id is not None and not isinstance(conversation_id, str):
        raise InvalidRequest("'conversation_id' must be a string", param="conversation_id")
    messages = decode_messages(body.get("messages"))
    spec = resolve(model, use_search)
    apply_thinking(body, spec)
    stop, max_tokens = decode_limits(body)
    return ChatRequest(model=model, spec=spec, messages=messages,
                       stream=stream, include_usage=include_usage,
                       conversation_id=conversation_id, stop=stop, max_tokens=max_tokens)


def _bool(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be true or false", param=key)
    return value


def decode_messages(raw) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        role = m.get("role")
        if role not in ROLES:
            raise InvalidRequest(f"{where}.role must be one of system, user, assistant, tool",
                                 param=f"{where}.role")
        role = {"developer": "system", "function": "tool"}.get(role, role)
        text, attachments = _content(m.get("content"), f"{where}.content")
        if role == "assistant" and m.get("tool_calls"):
            calls = orjson.dumps(m["tool_calls"]).decode()
            text = f"{text}\n[tool calls] {calls}" if text else f"[tool calls] {calls}"
        name = m.get("tool_call_id") or m.get("name")
        out.append(Message(role=role, text=text, name=name if isinstance(name, str) else None,
                           attachments=attachments))
    return out


def _content(content, where: str) -> tuple[str, tuple[Attachment, ...]]:
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of parts", param=where)
    texts, attachments = [], []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{where}[{j}] must be an object with a 'type'", param=f"{where}[{j}]")
        if part["type"] in ("text", "input_text"):
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{where}[{j}].text must be a string", param=f"{where}[{j}].text")
            texts.append(part["text"])
        elif part["type"] in ATTACHMENT_TYPES:
            attachments.append(decode_attachment(part, f"{where}[{j}]"))
        else:
            raise InvalidRequest(f"{where}[{j}]: content part type '{part['type']}' is not "
                                 "supported", param=f"{where}[{j}].type")
    return "\n".join(texts), tuple(attachments)


_FINISH_NULL = b',"finish_reason":null}]}\n\n'
DONE = b"data: [DONE]\n\n"


class ChunkEncoder:
    """Canonical events -> `chat.completion.chunk` SSE bytes. The invariant part of every
    chunk is encoded once; each event costs one orjson call on its text."""

    __slots__ = ("id", "created", "model", "_prefix", "_dumps")

    def __init__(self, model: str, completion_id: str | None = None):
        self.id = completion_id or new_completion_id()
        self.created = int(time.time())
        self.model = model
        self._prefix = (b'data: {"id":' + orjson.dumps(self.id) +
                        b',"object":"chat.completion.chunk","created":' + str(self.created).encode() +
                        b',"model":' + orjson.dumps(model) + b',"choices":[{"index":0,"delta":')
        self._dumps = orjson.dumps

    def role(self) -> bytes:
        return self._prefix + b'{"role":"assistant","content":""}' + _FINISH_NULL

    def text(self, text: str) -> bytes:
        return self._prefix + b'{"content":' + self._dumps(text) + b"}" + _FINISH_NULL

    def reasoning(self, text: str) -> bytes:
        return self._prefix + b'{"reasoning_content":' + self._dumps(text) + b"}" + _FINISH_NULL

    def annotation(self, c: Citation) -> bytes:
        return (self._prefix + b'{"annotations":[' + self._dumps(url_citation(c)) + b"]}" +
                _FINISH_NULL)

    def finish(self, reason: str) -> bytes:
        return self._prefix + b'{},"finish_reason":' + self._dumps(reason) + b"}]}\n\n"

    def usage(self, usage: dict) -> bytes:
        return b"data: " + orjson.dumps({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [], "usage": usage}) + b"\n\n"

    def event(self, ev) -> bytes | None:
        t = type(ev)
        if t is TextDelta:
            return self.text(ev.text)
        if t is ReasoningDelta:
            return self.reasoning(ev.text)
        if t is Citation:
            return self.annotation(ev)
        if t is Finish:
            if ev.reason == "content_filter" and ev.message:
                # The moderation notice goes where OpenAI puts a refusal.
                return (self._prefix + b'{"refusal":' + self._dumps(ev.message) + b"}" +
                        _FINISH_NULL + self.finish(ev.reason))
            return self.finish(ev.reason)
        return None


def url_citation(c: Citation) -> dict:
    end = c.end if c.end is not None else 0
    return {"type": "url_citation", "url_citation": {
        "url": c.url, "title": c.title, "start_index": c.start if c.start is not None else end,
        "end_index": end}}


def error_chunk(e: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(e.body()) + b"\n\n"


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def completion_body(req: ChatRequest, result: ChatResult, completion_id: str, usage: dict) -> dict:
    message = {"role": "assistant", "content": result.text}
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if result.citations:
        message["annotations"] = [url_citation(c) for c in result.citations]
    if result.finish_reason == "content_filter" and result.finish_message:
        message["refusal"] = result.finish_message
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason,
                         "logprobs": None}],
            "usage": usage}


def models_body(specs) -> dict:
    return {"object": "list", "data": [model_body(s) for s in specs]}


def model_body(s) -> dict:
    return {"id": s.id, "object": "model", "created": 0,
            "owned_by": "kimi" if s.live else "kimi-gateway", "description": s.description,
            "context_length": s.context_length,
            "capabilities": {"thinking": s.thinking, "search": s.search,
                             "agent": bool(s.agent_mode), "vision": s.vision,
                             "kimiplus": bool(s.kimiplus_id) and not s.agent_mode}}
