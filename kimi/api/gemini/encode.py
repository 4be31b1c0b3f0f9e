"""Canonical events and errors -> Gemini GenerateContentResponse bytes and objects (pure).

A stream is `data: <GenerateContentResponse>` events (CRLF-separated, as Google sends them),
one per content event, no `[DONE]`. The last one carries finishReason and usageMetadata: the
Finish event is held until the Usage that follows it. Every chunk has a non-empty part (the
SDK's chat history drops a turn with an empty one), so the last one carries an empty text.
"""

from __future__ import annotations

import uuid
from typing import assert_never

import orjson

from ...canonical.events import (ChatResult, Citation, Finish, FinishReason, ReasoningDelta,
                                 TextDelta, Usage)
from ...canonical.tools import ToolCall, ToolKind
from ...errors import GatewayError

_LS, _PS = "\u2028".encode(), "\u2029".encode()


def dumps(value) -> bytes:
    """JSON for one SSE line. Google's JS and Dart SDKs find events with
    /^data: (.*)(?:\\n\\n|\\r\\r|\\r\\n\\r\\n)/, whose `.` stops at U+2028 and U+2029: those are
    escaped (orjson writes them raw), or such an answer would stall Gemini CLI."""
    data = orjson.dumps(value)
    if b"\xe2\x80" in data:
        data = data.replace(_LS, b"\\u2028").replace(_PS, b"\\u2029")
    return data


FINISH = {FinishReason.STOP: "STOP", FinishReason.LENGTH: "MAX_TOKENS",
          FinishReason.CONTENT_FILTER: "SAFETY", FinishReason.TOOL_CALLS: "STOP"}
END = b"\r\n\r\n"


def new_response_id() -> str:
    return uuid.uuid4().hex[:22]


class StreamEncoder:
    """Canonical events -> SSE bytes. The invariant ends of a chunk are encoded once."""

    def __init__(self, model: str, response_id: str, include_thoughts: bool):
        self.model, self.response_id = model, response_id
        self.include_thoughts = include_thoughts
        self._head = b'data: {"candidates":[{"content":{"parts":['
        self._tail = (b'],"role":"model"},"index":0}],"modelVersion":' + dumps(model) +
                      b',"responseId":' + dumps(response_id) + b"}" + END)
        self.finish: Finish | None = None
        self.text: list[str] = []
        self.citations: list[Citation] = []

    def part(self, part: dict) -> bytes:
        return self._head + dumps(part) + self._tail

    def keepalive(self) -> bytes:
        """An empty text part: SDKs parse only `data:` lines (a comment breaks them)."""
        return self.part({"text": ""})

    def event(self, ev) -> bytes | None:
        match ev:
            case TextDelta():
                self.text.append(ev.text)
                return self.part({"text": ev.text})
            case ReasoningDelta():
                return self.part({"text": ev.text, "thought": True}) \
                    if self.include_thoughts else None
            case Citation():
                self.citations.append(ev)
                return None
            case ToolCall():
                return self.part(call_part(ev))
            case Finish():
                self.finish = ev
                return None
            case Usage():
                return self.last(ev)
            case _:
                assert_never(ev)

    def last(self, usage: Usage | None) -> bytes:
        finish, self.finish = self.finish or Finish(), None
        body = {"candidates": [candidate([{"text": ""}], finish.reason, finish.message,
                                         self.citations, "".join(self.text))],
                "modelVersion": self.model, "responseId": self.response_id}
        if usage is not None:
            body["usageMetadata"] = usage_metadata(usage)
        return b"data: " + dumps(body) + END

    def tail(self) -> bytes:
        """The last chunk, if no Usage came to carry it."""
        return self.last(None) if self.finish is not None else b""


def call_part(call: ToolCall) -> dict:
    args = call.arguments
    if call.kind == ToolKind.CUSTOM or not isinstance(args, dict):
        args = {"input": args}      # Gemini has no freeform tools: the raw text, wrapped
    return {"functionCall": {"id": call.id, "name": call.name, "args": args}}


def candidate(parts: list, reason: FinishReason, message: str | None, citations: list,
              text: str) -> dict:
    out = {"content": {"parts": parts, "role": "model"}, "finishReason": FINISH[reason],
           "index": 0}
    if reason == FinishReason.CONTENT_FILTER and message:
        out["finishMessage"] = message
    if citations:
        out["groundingMetadata"] = grounding(citations, text)
    return out


def grounding(citations: list[Citation], text: str) -> dict:
    """Sources as groundingChunks (one per URL); the text each mark supports as a segment in
    UTF-8 byte offsets, the unit Gemini clients (Gemini CLI's web search) insert marks by."""
    chunks: dict[str, int] = {}
    for c in citations:
        chunks.setdefault(c.url, len(chunks))
    titles = {c.url: c.title for c in reversed(citations)}
    supports = []
    for c in citations:
        if c.start is None or c.end is None:
            continue
        start = len(text[:c.start].encode())
        supports.append({"segment": {"startIndex": start,
                                     "endIndex": start + len(text[c.start:c.end].encode()),
                                     "text": text[c.start:c.end]},
                         "groundingChunkIndices": [chunks[c.url]]})
    out = {"groundingChunks": [{"web": {"uri": url, "title": titles[url]}} for url in chunks]}
    if supports:
        out["groundingSupports"] = supports
    return out


def usage_metadata(u: Usage) -> dict:
    out = {"promptTokenCount": u.prompt_tokens,
           "candidatesTokenCount": u.completion_tokens - u.reasoning_tokens,
           "totalTokenCount": u.total_tokens}
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    return out


def response_body(result: ChatResult, model: str, response_id: str,
                  include_thoughts: bool) -> dict:
    parts = []
    if include_thoughts and result.reasoning:
        parts.append({"text": result.reasoning, "thought": True})
    if result.text or not result.tool_calls:
        parts.append({"text": result.text})
    parts += [call_part(c) for c in result.tool_calls]
    body = {"candidates": [candidate(parts, result.finish_reason, result.finish_message,
                                     result.citations, result.text)]}
    if result.usage is not None:
        body["usageMetadata"] = usage_metadata(result.usage)
    body.update(modelVersion=model, responseId=response_id)
    return body


def models_body(specs) -> dict:
    return {"models": [model_body(s) for s in specs]}


def model_body(s) -> dict:
    out = {"name": "models/" + s.id, "baseModelId": s.id, "version": "1", "displayName": s.id,
           "description": s.description,
           "supportedGenerationMethods": ["generateContent", "streamGenerateContent",
                                          "countTokens"],
           "thinking": s.thinking}
    if s.context_length:
        out["inputTokenLimit"] = s.context_length
    return out


# --- errors --------------------------------------------------------------------------------

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED",
          403: "PERMISSION_DENIED", 404: "NOT_FOUND", 405: "UNIMPLEMENTED", 409: "ABORTED",
          413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
          500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def error_body(e: GatewayError) -> dict:
    status = STATUS.get(e.status, "INVALID_ARGUMENT" if e.status < 500 else "INTERNAL")
    return {"error": {"code": e.status, "message": e.message, "status": status}}


def error_chunk(e: GatewayError) -> bytes:
    return b"data: " + dumps(error_body(e)) + END
