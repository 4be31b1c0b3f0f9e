"""Canonical events and errors -> Anthropic Messages bytes and objects (pure, no I/O).

The stream is Anthropic's grammar exactly: every record is `event: <type>` plus `data:` of
the same type (the SDK skips records without an event name); message_start first, then the
content blocks in order with consecutive indexes, one open at a time, each started, given its
deltas and stopped (a thinking block gets one signature_delta before it stops; a tool_use
block starts with `input: {}` and gets its input as one input_json_delta); then message_delta
(stop_reason and cumulative usage) and message_stop, which Claude Code waits for. An error
after the stream started is one `event: error` record, and nothing follows it.
"""

from __future__ import annotations

import secrets
import string
from typing import assert_never

import orjson

from ...canonical.events import (ChatResult, Citation, Finish, FinishReason, ReasoningDelta,
                                 TextDelta, Usage)
from ...canonical.tools import ToolCall, ToolKind
from ...errors import GatewayError

STOP_REASONS = {FinishReason.STOP: "end_turn", FinishReason.LENGTH: "max_tokens",
                FinishReason.CONTENT_FILTER: "refusal", FinishReason.TOOL_CALLS: "tool_use"}
PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_ID_CHARS = string.ascii_letters + string.digits


def record(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def new_message_id() -> str:
    return "msg_" + "".join(secrets.choice(_ID_CHARS) for _ in range(24))


def signature_for(message_id: str) -> str:
    # Opaque to the client, which sends it back with the thinking block; we never check it
    # (the thinking text itself is not sent upstream again).
    return "kimi-gateway." + message_id


def stop_reason(reason: FinishReason, stop_sequence: str | None) -> str:
    if reason == FinishReason.STOP and stop_sequence:
        return "stop_sequence"
    return STOP_REASONS[reason]


def tool_input(call: ToolCall) -> dict:
    """Anthropic's `input` is always an object: a freeform tool's raw text is wrapped, and
    arguments that are not an object (the runner could not parse them) are too."""
    args = call.arguments
    if call.kind == ToolKind.CUSTOM or not isinstance(args, (dict, str)):
        return {"input": args}
    if isinstance(args, str):
        try:
            parsed = orjson.loads(args)
        except orjson.JSONDecodeError:
            parsed = None
        return parsed if isinstance(parsed, dict) else {"input": args}
    return args


def usage_body(input_tokens: int, output_tokens: int) -> dict:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def citation_body(c: Citation) -> dict:
    return {"type": "web_search_result_location", "url": c.url, "title": c.title or None,
            "cited_text": "", "encrypted_index": c.ref}


def search_blocks(message_id: str, query: str, sources: list[Citation]) -> list[dict]:
    """A web_search server tool's part of an answer, as Anthropic writes it before the text:
    the search (server_tool_use) and the pages Kimi's search found (web_search_tool_result;
    Kimi gives no encrypted content or page age)."""
    tool_id = "srvtoolu_" + message_id.removeprefix("msg_")
    results = [{"type": "web_search_result", "url": c.url, "title": c.title or c.url,
                "encrypted_content": "", "page_age": None} for c in sources]
    return [{"type": "server_tool_use", "id": tool_id, "name": "web_search",
             "input": {"query": query}},
            {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results}]


class MessageStreamEncoder:
    """Canonical events -> Anthropic SSE records; `start()` first, `tail()` last.
    `search_query`: the request had a web_search server tool (see `search_blocks`)."""

    def __init__(self, model: str, message_id: str, input_tokens: int, *,
                 show_thinking: bool, search_query: str | None = None):
        self.model, self.id, self.input_tokens = model, message_id, input_tokens
        self.show_thinking = show_thinking
        self.search_query = search_query
        self.sources: dict[str, Citation] = {}     # by URL, for the search blocks
        self.index = -1                 # the last block started
        self.open: str | None = None    # the type of the open block
        self.finish: Finish | None = None
        self.ended = False              # message_stop (or an error) went out
        self.cited: list[Citation] = []

    def start(self) -> bytes:
        message = {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": usage_body(self.input_tokens, 0)}
        return record("message_start", {"type": "message_start", "message": message}) + PING

    def event(self, ev) -> bytes:
        match ev:
            case TextDelta():
                return self._delta("text", {"type": "text_delta", "text": ev.text}, ev.text)
            case ReasoningDelta():
                if not self.show_thinking:
                    return b""
                return self._delta("thinking", {"type": "thinking_delta", "thinking": ev.text},
                                   ev.text)
            case Citation():
                return self._citation(ev)
            case ToolCall():
                return self._tool_use(ev)
            case Finish():
                self.finish = ev
                return self._close() + self._searched()
            case Usage():
                return self._end(ev.prompt_tokens, ev.completion_tokens)
            case _:
                assert_never(ev)

    def tail(self) -> bytes:
        """The end of the message, if the events did not end it (no usage came)."""
        return b"" if self.ended else self._close() + self._end(self.input_tokens, 0)

    def error(self, e: GatewayError) -> bytes:
        self.ended = True
        return record("error", error_body(e))

    def _delta(self, kind: str, delta: dict, text: str) -> bytes:
        if not text:
            return b""
        out = b"" if self.open == kind else self._open(kind)
        return out + record("content_block_delta", {"type": "content_block_delta",
                                                    "index": self.index, "delta": delta})

    def _open(self, kind: str, block: dict | None = None) -> bytes:
        out = self._close()
        self.index += 1
        self.open = kind
        if block is None:
            block = {"type": "text", "text": ""} if kind == "text" else \
                {"type": "thinking", "thinking": "", "signature": ""}
        out += record("content_block_start", {"type": "content_block_start",
                                              "index": self.index, "content_block": block})
        if kind == "text" and self.cited:
            out += b"".join(self._citation_delta(c) for c in self.cited)
            self.cited.clear()
        return out

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        out = b""
        if self.open == "thinking":
            out = record("content_block_delta", {
                "type": "content_block_delta", "index": self.index,
                "delta": {"type": "signature_delta", "signature": signature_for(self.id)}})
        self.open = None
        return out + record("content_block_stop", {"type": "content_block_stop",
                                                   "index": self.index})

    def _searched(self) -> bytes:
        """The search blocks, after the answer: its sources are known only as the text that
        cites them has gone out (a non-streamed answer has them before its text)."""
        if self.search_query is None or not self.sources:
            return b""
        server_use, result = search_blocks(self.id, self.search_query,
                                           list(self.sources.values()))
        self.search_query = None
        out = self._open("server_tool_use", {**server_use, "input": {}})
        out += self._input_delta(server_use["input"])
        return out + self._open("web_search_tool_result", result) + self._close()

    def _citation(self, c: Citation) -> bytes:
        self.sources.setdefault(c.url, c)
        if self.open == "text":
            return self._citation_delta(c)
        self.cited.append(c)        # for the next text block
        return b""

    def _citation_delta(self, c: Citation) -> bytes:
        return record("content_block_delta", {
            "type": "content_block_delta", "index": self.index,
            "delta": {"type": "citations_delta", "citation": citation_body(c)}})

    def _tool_use(self, call: ToolCall) -> bytes:
        out = self._open("tool_use", {"type": "tool_use", "id": call.id, "name": call.name,
                                      "input": {}})
        return out + self._input_delta(tool_input(call)) + self._close()

    def _input_delta(self, value: dict) -> bytes:
        """A tool block's whole input, in one delta (its start said `input: {}`)."""
        return record("content_block_delta", {
            "type": "content_block_delta", "index": self.index,
            "delta": {"type": "input_json_delta", "partial_json": orjson.dumps(value).decode()}})

    def _end(self, input_tokens: int, output_tokens: int) -> bytes:
        finish = self.finish or Finish()
        self.ended = True
        delta = {"stop_reason": stop_reason(finish.reason, finish.stop_sequence),
                 "stop_sequence": finish.stop_sequence}
        return (record("message_delta", {"type": "message_delta", "delta": delta,
                                         "usage": usage_body(input_tokens, output_tokens)})
                + record("message_stop", {"type": "message_stop"}))


def message_body(model: str, result: ChatResult, message_id: str, *,
                 show_thinking: bool, search_query: str | None = None) -> dict:
    content: list[dict] = []
    if show_thinking and result.reasoning:
        content.append({"type": "thinking", "thinking": result.reasoning,
                        "signature": signature_for(message_id)})
    if search_query is not None and result.citations:
        content += search_blocks(message_id, search_query, result.citations)
    if result.text or not result.tool_calls:
        block = {"type": "text", "text": result.text}
        if result.citations:
            block["citations"] = [citation_body(c) for c in result.citations]
        content.append(block)
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c)}
                for c in result.tool_calls]
    usage = result.usage or Usage(0, 0)
    return {"id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": stop_reason(result.finish_reason, result.stop_sequence),
            "stop_sequence": result.stop_sequence,
            "usage": usage_body(usage.prompt_tokens, usage.completion_tokens)}


# --- errors --------------------------------------------------------------------------------

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               409: "invalid_request_error", 413: "request_too_large", 429: "rate_limit_error",
               504: "timeout_error", 529: "overloaded_error"}


def error_status(e: GatewayError) -> int:
    """Anthropic answers 529 when it is overloaded: Kimi's free-tier overload is that."""
    return 529 if e.code == "upstream_overloaded" else e.status


def error_body(e: GatewayError) -> dict:
    status = error_status(e)
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    message = e.message
    if e.code == "context_length_exceeded":
        # Claude Code compacts the conversation when the message says this, as Anthropic's does.
        message = f"prompt is too long: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


# --- models --------------------------------------------------------------------------------

CREATED_AT = "2026-01-01T00:00:00Z"


def model_entry(model_id: str, display_name: str) -> dict:
    return {"type": "model", "id": model_id, "display_name": display_name,
            "created_at": CREATED_AT}


def models_body(entries: list[dict]) -> dict:
    return {"data": entries, "has_more": False,
            "first_id": entries[0]["id"] if entries else None,
            "last_id": entries[-1]["id"] if entries else None}
