"""Canonical events and errors -> OpenAI Chat Completions bytes and objects (pure, no I/O)."""

from __future__ import annotations

import time
import uuid
from typing import assert_never

import orjson

from ...canonical.events import (ChatResult, Citation, Finish, FinishReason, ReasoningDelta,
                                 TextDelta, Usage)
from ...canonical.request import ChatRequest
from ...canonical.tools import ToolCall, ToolKind
from ...errors import GatewayError

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

    def tool_call(self, call: ToolCall) -> bytes:
        """A header chunk (id, name, empty arguments), then the arguments in one chunk: the
        shape streaming clients accumulate."""
        head = {"index": call.index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}
        args = {"index": call.index, "function": {"arguments": arguments_text(call)}}
        return (self._prefix + b'{"tool_calls":[' + self._dumps(head) + b"]}" + _FINISH_NULL +
                self._prefix + b'{"tool_calls":[' + self._dumps(args) + b"]}" + _FINISH_NULL)

    def finish(self, ev: Finish) -> bytes:
        end = self._prefix + b'{},"finish_reason":' + self._dumps(ev.reason.value) + b"}]}\n\n"
        if ev.reason == FinishReason.CONTENT_FILTER and ev.message:
            # The moderation notice goes where OpenAI puts a refusal.
            return (self._prefix + b'{"refusal":' + self._dumps(ev.message) + b"}" +
                    _FINISH_NULL + end)
        return end

    def usage(self, usage: Usage) -> bytes:
        return b"data: " + orjson.dumps({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [], "usage": usage_body(usage)}) + b"\n\n"

    def event(self, ev) -> bytes:
        match ev:
            case TextDelta():
                return self.text(ev.text)
            case ReasoningDelta():
                return self.reasoning(ev.text)
            case Citation():
                return self.annotation(ev)
            case ToolCall():
                return self.tool_call(ev)
            case Finish():
                return self.finish(ev)
            case Usage():
                return self.usage(ev)
            case _:
                assert_never(ev)


def arguments_text(call: ToolCall) -> str:
    """OpenAI carries arguments as a JSON string; a freeform tool's raw input is wrapped."""
    if call.kind == ToolKind.CUSTOM:
        return orjson.dumps({"input": call.arguments}).decode()
    if isinstance(call.arguments, str):
        return call.arguments
    return orjson.dumps(call.arguments).decode()


def url_citation(c: Citation) -> dict:
    end = c.end if c.end is not None else 0
    return {"type": "url_citation", "url_citation": {
        "url": c.url, "title": c.title, "start_index": c.start if c.start is not None else end,
        "end_index": end}}


def usage_body(u: Usage) -> dict:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def completion_body(req: ChatRequest, result: ChatResult, completion_id: str) -> dict:
    message = {"role": "assistant", "content": result.text}
    if result.tool_calls:
        message["content"] = result.text or None
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": arguments_text(c)}} for c in result.tool_calls]
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if result.citations:
        message["annotations"] = [url_citation(c) for c in result.citations]
    if result.finish_reason == FinishReason.CONTENT_FILTER and result.finish_message:
        message["refusal"] = result.finish_message
    body = {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": result.finish_reason.value, "logprobs": None}]}
    if result.usage is not None:
        body["usage"] = usage_body(result.usage)
    return body


def models_body(specs) -> dict:
    return {"object": "list", "data": [model_body(s) for s in specs]}


def model_body(s) -> dict:
    return {"id": s.id, "object": "model", "created": 0,
            "owned_by": "kimi" if s.live else "kimi-gateway", "description": s.description,
            "context_length": s.context_length,
            "capabilities": {"thinking": s.thinking, "search": s.search,
                             "agent": bool(s.agent_mode), "vision": s.vision,
                             "kimiplus": bool(s.kimiplus_id) and not s.agent_mode}}


# --- errors --------------------------------------------------------------------------------

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               402: "insufficient_quota", 403: "permission_error", 404: "not_found_error",
               405: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
               429: "rate_limit_error", 502: "upstream_error", 503: "upstream_error",
               504: "upstream_error"}


def error_body(e: GatewayError) -> dict:
    kind = ERROR_TYPES.get(e.status, "invalid_request_error" if e.status < 500 else "server_error")
    return {"error": {"message": e.message, "type": kind, "param": e.param, "code": e.code}}


def error_chunk(e: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(error_body(e)) + b"\n\n"
