"""Canonical events -> the Responses API stream and response object (pure, no I/O).

One encoder serves both paths: a stream writes the bytes of each event, a non-stream answer
feeds it the same events and returns `response()`. The grammar (verified against the openai
SDK's accumulator and Codex's reader): `sequence_number` 0, 1, 2 ... without a gap;
`response.created` then `response.in_progress`; each output item `added` ... `done` with its
`output_index`; one item open at a time; a terminal event last (`response.completed`, or
`response.incomplete` for the output cap or moderation, `response.failed` for an error after
the stream started) carrying every done item and the usage.
"""

from __future__ import annotations

import time
import uuid
from typing import assert_never

import orjson

from ...canonical.events import (Citation, Finish, FinishReason, ReasoningDelta, TextDelta,
                                 Usage)
from ...canonical.tools import ToolCall, ToolKind
from ...errors import GatewayError

INCOMPLETE = {FinishReason.LENGTH: "max_output_tokens",
              FinishReason.CONTENT_FILTER: "content_filter"}


def new_response_id() -> str:
    return "resp_" + uuid.uuid4().hex


class _Item:
    """The output item being streamed: a reasoning summary or an assistant message."""
    __slots__ = ("kind", "id", "index", "parts", "annotations")

    def __init__(self, kind: str, item_id: str, index: int):
        self.kind, self.id, self.index = kind, item_id, index
        self.parts: list[str] = []
        self.annotations: list[dict] = []


class ResponseEncoder:
    def __init__(self, echo: dict, response_id: str | None = None,
                 created_at: int | None = None):
        self.id = response_id or new_response_id()
        self._hex = self.id.removeprefix("resp_")
        self.echo = echo
        self.created_at = int(time.time()) if created_at is None else created_at
        self.seq = 0
        self.output: list[dict] = []        # the done items, in order
        self.texts: list[str] = []          # the answer's text and calls, as the turn
        self.calls: list[ToolCall] = []     # stores them in its conversation
        self._open: _Item | None = None
        self._pending: list[Citation] = []  # sources that came before their text
        self.finish: Finish | None = None
        self.usage: Usage | None = None
        self.status = "in_progress"
        self.ended = False

    # --- the response object -------------------------------------------------------------

    def response(self, error: dict | None = None) -> dict:
        reason = INCOMPLETE.get(self.finish.reason) if self.finish else None
        return {"id": self.id, "object": "response", "created_at": self.created_at,
                "status": self.status, "background": False, "error": error,
                "incomplete_details": {"reason": reason} if self.status == "incomplete"
                else None, **self.echo, "output": list(self.output),
                "usage": usage_body(self.usage) if self.usage else None}

    # --- stream --------------------------------------------------------------------------

    def _event(self, kind: str, fields: dict) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def head(self) -> bytes:
        body = self.response()
        return (self._event("response.created", {"response": body}) +
                self._event("response.in_progress", {"response": body}))

    def keepalive(self) -> bytes:
        """A repeated `response.in_progress`: clients that time out on silence (Codex: 300 s
        without an event) see an event, the SDK accumulator accepts it."""
        return self._event("response.in_progress", {"response": self.response()})

    def event(self, ev) -> bytes:
        match ev:
            case TextDelta():
                self.texts.append(ev.text)
                return self._delta("message", ev.text)
            case ReasoningDelta():
                return self._delta("reasoning", ev.text)
            case Citation():
                return self._citation(ev)
            case ToolCall():
                self.calls.append(ev)
                return self._close() + self._call(ev)
            case Finish():
                self.finish = ev
                out = self._close()
                if ev.reason == FinishReason.CONTENT_FILTER and ev.message:
                    out += self._refusal(ev.message)
                return out
            case Usage():
                self.usage = ev
                return self._terminal()
            case _:
                assert_never(ev)

    def tail(self) -> bytes:
        return b"" if self.ended else self._close() + self._terminal()

    def in_band(self, e: GatewayError) -> bytes:
        out = self._close()
        self.status, self.ended = "failed", True
        return out + self._event("response.failed", {"response": self.response(failure(e))})

    # --- items ---------------------------------------------------------------------------

    def _delta(self, kind: str, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != kind:
            out = self._close() + self._begin(kind)
        item = self._open
        item.parts.append(text)
        if kind == "message":
            return out + self._event("response.output_text.delta", {
                "item_id": item.id, "output_index": item.index, "content_index": 0,
                "delta": text, "logprobs": []})
        return out + self._event("response.reasoning_summary_text.delta", {
            "item_id": item.id, "output_index": item.index, "summary_index": 0, "delta": text})

    def _begin(self, kind: str) -> bytes:
        index = len(self.output)
        item = self._open = _Item(kind, self._item_id(kind, index), index)
        where = {"item_id": item.id, "output_index": index}
        if kind == "message":
            out = self._event("response.output_item.added", {"output_index": index, "item": {
                "id": item.id, "type": "message", "status": "in_progress", "role": "assistant",
                "content": []}})
            out += self._event("response.content_part.added", {
                **where, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}})
            pending, self._pending = self._pending, []
            return out + b"".join(self._annotate(c) for c in pending)
        out = self._event("response.output_item.added", {"output_index": index, "item": {
            "id": item.id, "type": "reasoning", "summary": []}})
        return out + self._event("response.reasoning_summary_part.added", {
            **where, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})

    def _close(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        text = "".join(item.parts)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "reasoning":
            part = {"type": "summary_text", "text": text}
            out = self._event("response.reasoning_summary_text.done",
                              {**where, "summary_index": 0, "text": text})
            out += self._event("response.reasoning_summary_part.done",
                               {**where, "summary_index": 0, "part": part})
            return out + self._done({"id": item.id, "type": "reasoning", "summary": [part]})
        part = {"type": "output_text", "text": text, "annotations": item.annotations}
        out = self._event("response.output_text.done",
                          {**where, "content_index": 0, "text": text, "logprobs": []})
        out += self._event("response.content_part.done", {**where, "content_index": 0,
                                                          "part": part})
        cut = self.finish is not None and self.finish.reason in INCOMPLETE
        return out + self._done({"id": item.id, "type": "message",
                                 "status": "incomplete" if cut else "completed",
                                 "role": "assistant", "content": [part]})

    def _done(self, item: dict) -> bytes:
        index = len(self.output)
        self.output.append(item)
        return self._event("response.output_item.done", {"output_index": index, "item": item})

    def _call(self, call: ToolCall) -> bytes:
        index = len(self.output)
        custom = call.kind == ToolKind.CUSTOM
        kind = "custom_tool_call" if custom else "function_call"
        item_id = self._item_id(kind, index)
        field, text = ("input", call.arguments) if custom else ("arguments", arguments_text(call))
        head = {"id": item_id, "type": kind, "status": "in_progress", "call_id": call.id,
                "name": call.name, field: ""}
        where = {"item_id": item_id, "output_index": index}
        prefix = "response.custom_tool_call_input" if custom else \
            "response.function_call_arguments"
        out = self._event("response.output_item.added", {"output_index": index, "item": head})
        out += self._event(prefix + ".delta", {**where, "delta": text})
        out += self._event(prefix + ".done", {**where, field: text})
        return out + self._done({**head, "status": "completed", field: text})

    def _refusal(self, notice: str) -> bytes:
        """Kimi's moderation notice, where the API puts a refusal: its own message item."""
        index = len(self.output)
        item_id = self._item_id("message", index)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        part = {"type": "refusal", "refusal": notice}
        out = self._event("response.output_item.added", {"output_index": index, "item": {
            "id": item_id, "type": "message", "status": "in_progress", "role": "assistant",
            "content": []}})
        out += self._event("response.content_part.added",
                           {**where, "part": {"type": "refusal", "refusal": ""}})
        out += self._event("response.refusal.delta", {**where, "delta": notice})
        out += self._event("response.refusal.done", {**where, "refusal": notice})
        out += self._event("response.content_part.done", {**where, "part": part})
        return out + self._done({"id": item_id, "type": "message", "status": "incomplete",
                                 "role": "assistant", "content": [part]})

    def _citation(self, c: Citation) -> bytes:
        if self._open is None or self._open.kind != "message":
            self._pending.append(c)
            return b""
        return self._annotate(c)

    def _annotate(self, c: Citation) -> bytes:
        item = self._open
        annotation = url_citation(c)
        item.annotations.append(annotation)
        return self._event("response.output_text.annotation.added", {
            "item_id": item.id, "output_index": item.index, "content_index": 0,
            "annotation_index": len(item.annotations) - 1, "annotation": annotation})

    def _terminal(self) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        reason = self.finish.reason if self.finish else FinishReason.STOP
        self.status = "incomplete" if reason in INCOMPLETE else "completed"
        return self._event(f"response.{self.status}", {"response": self.response()})

    def _item_id(self, kind: str, index: int) -> str:
        prefix = {"message": "msg", "reasoning": "rs", "function_call": "fc",
                  "custom_tool_call": "ctc"}[kind]
        return f"{prefix}_{self._hex}_{index}"


def arguments_text(call: ToolCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return orjson.dumps(call.arguments).decode()


def url_citation(c: Citation) -> dict:
    end = c.end if c.end is not None else 0
    return {"type": "url_citation", "start_index": c.start if c.start is not None else end,
            "end_index": end, "url": c.url, "title": c.title}


def usage_body(u: Usage) -> dict:
    return {"input_tokens": u.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.total_tokens}


def failure(e: GatewayError) -> dict:
    """The `error` of a failed response, in the codes Codex acts on: it compacts on
    context_length_exceeded, waits on rate_limit_exceeded ("try again in N s"), retries the
    rest."""
    if e.code == "context_length_exceeded":
        return {"code": e.code, "message": e.message}
    if e.status == 429:
        wait = f" Please try again in {int(e.retry_after)}s." if e.retry_after else ""
        return {"code": "rate_limit_exceeded", "message": e.message + wait}
    if e.status == 402:
        return {"code": "insufficient_quota", "message": e.message}
    return {"code": "server_error", "message": e.message}


# --- errors before the stream starts -----------------------------------------------------

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "invalid_request_error", 413: "invalid_request_error",
               429: "rate_limit_error"}


def error_body(e: GatewayError) -> dict:
    kind = ERROR_TYPES.get(e.status, "invalid_request_error" if e.status < 500 else "server_error")
    return {"error": {"message": e.message, "type": kind, "param": e.param, "code": e.code}}
