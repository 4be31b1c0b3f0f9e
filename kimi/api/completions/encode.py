"""Canonical events -> OpenAI `text_completion` objects and SSE bytes (pure, no I/O).
The route has no place for reasoning, sources or tool calls: only the answer text goes out."""

from __future__ import annotations

import time
import uuid
from typing import assert_never

import orjson

from ...canonical.events import (ChatResult, Citation, Finish, ReasoningDelta, TextDelta,
                                 Usage)
from ...canonical.tools import ToolCall

DONE = b"data: [DONE]\n\n"


def new_completion_id() -> str:
    return "cmpl-" + uuid.uuid4().hex


def usage_body(u: Usage) -> dict:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens}


class ChunkEncoder:
    def __init__(self, model: str, completion_id: str):
        self.id, self.model, self.created = completion_id, model, int(time.time())

    def chunk(self, text: str, finish: str | None = None) -> bytes:
        return self._data([{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}])

    def _data(self, choices: list, **extra) -> bytes:
        return b"data: " + orjson.dumps({
            "id": self.id, "object": "text_completion", "created": self.created,
            "model": self.model, "choices": choices, **extra}) + b"\n\n"

    def event(self, ev) -> bytes | None:
        match ev:
            case TextDelta():
                return self.chunk(ev.text)
            case ReasoningDelta() | Citation() | ToolCall():
                return None     # no tools are offered on this route; no field for the rest
            case Finish():
                return self.chunk("", ev.reason.value)
            case Usage():
                return self._data([], usage=usage_body(ev))
            case _:
                assert_never(ev)


def completion_body(model: str, completion_id: str, result: ChatResult, prefix: str) -> dict:
    body = {"id": completion_id, "object": "text_completion", "created": int(time.time()),
            "model": model,
            "choices": [{"text": prefix + result.text, "index": 0, "logprobs": None,
                         "finish_reason": result.finish_reason.value}]}
    if result.usage is not None:
        body["usage"] = usage_body(result.usage)
    return body
