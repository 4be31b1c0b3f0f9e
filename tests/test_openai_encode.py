"""The OpenAI encoder against golden bytes (tests/data/openai_*.golden), and its contract:
every canonical event has an encoding; an unknown one fails instead of vanishing.
Regenerate the golden files with UPDATE_GOLDEN=1 after an intended change, and read the diff."""

from __future__ import annotations

import orjson
import pytest

from kimi.api.openai import encode
from kimi.canonical.events import (ChatResult, Citation, Finish, FinishReason, ReasoningDelta,
                                   TextDelta, Usage)
from kimi.canonical.models import resolve_model
from kimi.canonical.request import ChatRequest
from kimi.canonical.tools import ToolCall, ToolKind
from tests.golden import golden


EVENTS = [
    ReasoningDelta("Thinking \u2026"),
    TextDelta("Hello \u4e16\u754c \U0001F389 [1]"),
    Citation("1", "https://example.com/a", "A", 1, 15, 18),
    ToolCall("call_abc", "get_weather", {"city": "Paris", "days": 2}, index=0),
    ToolCall("call_def", "apply_patch", "*** Begin Patch\n+x\n*** End Patch", ToolKind.CUSTOM, 1),
    Finish(FinishReason.TOOL_CALLS),
    Usage(12, 34, 5),
]


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(encode.time, "time", lambda: 1_800_000_000.0)


def test_stream_chunks_match_the_golden_file(fixed_clock):
    enc = encode.ChunkEncoder("kimi", "chatcmpl-golden")
    data = enc.role() + b"".join(enc.event(ev) for ev in EVENTS) + encode.DONE
    golden("openai_stream.golden", data)


def test_moderation_notice_is_a_refusal_before_the_finish(fixed_clock):
    enc = encode.ChunkEncoder("kimi", "chatcmpl-golden")
    golden("openai_refusal.golden",
           enc.event(Finish(FinishReason.CONTENT_FILTER, "blocked by moderation")))


def test_completion_body_matches_the_golden_file(fixed_clock):
    result = ChatResult(text="", reasoning="Thinking", finish_reason=FinishReason.TOOL_CALLS,
                        tool_calls=[e for e in EVENTS if type(e) is ToolCall],
                        usage=Usage(12, 34, 5))
    req = ChatRequest(model="kimi", spec=resolve_model("kimi"), messages=[])
    body = encode.completion_body(req, result, "chatcmpl-golden")
    golden("openai_completion.golden", orjson.dumps(body, option=orjson.OPT_INDENT_2))


def test_every_canonical_event_has_an_encoding():
    enc = encode.ChunkEncoder("kimi")
    for ev in EVENTS:
        assert enc.event(ev).startswith(b"data: {")


def test_an_unknown_event_fails_instead_of_vanishing():
    class Novel:
        pass
    with pytest.raises(AssertionError):
        encode.ChunkEncoder("kimi").event(Novel())


def test_stream_chunks_rebuild_the_tool_calls_the_way_the_sdk_accumulates():
    """Chunks parse as JSON, and the per-index concatenation of arguments is the call's JSON."""
    enc = encode.ChunkEncoder("kimi")
    calls = {}
    for ev in EVENTS:
        for line in enc.event(ev).split(b"\n\n"):
            if not line:
                continue
            chunk = orjson.loads(line[len(b"data: "):])
            for choice in chunk["choices"]:
                for tc in choice["delta"].get("tool_calls", []):
                    entry = calls.setdefault(tc["index"], {"id": None, "name": "", "args": ""})
                    entry["id"] = tc.get("id") or entry["id"]
                    entry["name"] += tc.get("function", {}).get("name", "")
                    entry["args"] += tc.get("function", {}).get("arguments", "")
    assert calls[0] == {"id": "call_abc", "name": "get_weather",
                        "args": '{"city":"Paris","days":2}'}
    assert orjson.loads(calls[1]["args"]) == {"input": "*** Begin Patch\n+x\n*** End Patch"}


@pytest.mark.parametrize("status,kind", [(400, "invalid_request_error"), (401, "authentication_error"),
                                         (404, "not_found_error"), (429, "rate_limit_error"),
                                         (500, "server_error"), (503, "upstream_error")])
def test_error_bodies_carry_openai_types(status, kind):
    from kimi.errors import GatewayError
    e = GatewayError("m", param="p", code="c")
    e.status = status
    assert encode.error_body(e) == {"error": {"message": "m", "type": kind, "param": "p", "code": "c"}}
