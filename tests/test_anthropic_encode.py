"""The Anthropic encoder against golden bytes (tests/data/anthropic_*.golden) and its grammar.
Regenerate the golden files with UPDATE_GOLDEN=1 after an intended change, and read the diff."""

from __future__ import annotations

import anthropic
import httpx2
import orjson
import pytest

from kimi.api.anthropic import encode
from kimi.canonical.events import (ChatResult, Citation, Finish, FinishReason, ReasoningDelta,
                                   TextDelta, Usage)
from kimi.canonical.tools import ToolCall, ToolKind
from kimi.errors import RateLimited
from tests.anthropic_sse import blocks, check_stream
from tests.golden import DATA, golden


EVENTS = [
    ReasoningDelta("Thinking \u2026"),
    ReasoningDelta(" more"),
    TextDelta("Hello \u4e16\u754c \U0001F389 [1]"),
    Citation("1", "https://example.com/a", "A", 1, 15, 18),
    ToolCall("toolu_abc", "get_weather", {"city": "Paris", "days": 2}, index=0),
    ToolCall("toolu_def", "apply_patch", "*** Begin Patch\n+x\n*** End Patch", ToolKind.CUSTOM, 1),
    Finish(FinishReason.TOOL_CALLS),
    Usage(12, 34, 5),
]


def encoded(events, show_thinking=True) -> bytes:
    enc = encode.MessageStreamEncoder("claude-sonnet-4-5", "msg_golden", 12,
                                      show_thinking=show_thinking)
    return enc.start() + b"".join(enc.event(ev) for ev in events) + enc.tail()


def test_stream_matches_the_golden_file_and_the_grammar():
    data = encoded(EVENTS)
    golden("anthropic_stream.golden", data)
    built = blocks(check_stream(data.decode()))
    assert [b["type"] for b in built] == ["thinking", "text", "tool_use", "tool_use"]
    assert built[0]["thinking"] == "Thinking \u2026 more"
    assert built[3]["input"] == {"input": "*** Begin Patch\n+x\n*** End Patch"}


def test_message_body_matches_the_golden_file():
    result = ChatResult(text="I'll check.", reasoning="Thinking",
                        finish_reason=FinishReason.TOOL_CALLS,
                        tool_calls=[e for e in EVENTS if type(e) is ToolCall],
                        usage=Usage(12, 34, 5))
    body = encode.message_body("claude-sonnet-4-5", result, "msg_golden", show_thinking=True)
    golden("anthropic_message.golden", orjson.dumps(body, option=orjson.OPT_INDENT_2))


@pytest.mark.parametrize("finish,reason", [
    (Finish(FinishReason.STOP), "end_turn"), (Finish(FinishReason.LENGTH), "max_tokens"),
    (Finish(FinishReason.STOP, stop_sequence="END"), "stop_sequence"),
    (Finish(FinishReason.CONTENT_FILTER, "blocked"), "refusal")])
def test_stop_reasons(finish, reason):
    records = check_stream(encoded([TextDelta("x"), finish, Usage(1, 1)]).decode())
    assert records[-2][1]["delta"]["stop_reason"] == reason
    assert records[-2][1]["delta"]["stop_sequence"] == finish.stop_sequence


def test_without_usage_the_tail_still_ends_the_message():
    records = check_stream(encoded([TextDelta("x")]).decode())
    assert records[-1][0] == "message_stop"


def test_text_after_a_call_and_thinking_after_text_open_new_blocks():
    events = [TextDelta("a"), ReasoningDelta("b"), TextDelta("c"), Finish(), Usage(1, 1)]
    built = blocks(check_stream(encoded(events).decode()))
    assert [b["type"] for b in built] == ["text", "thinking", "text"]


def test_hidden_thinking_and_empty_deltas_send_nothing():
    events = [ReasoningDelta("secret"), TextDelta(""), TextDelta("x"), Finish(), Usage(1, 1)]
    data = encoded(events, show_thinking=False).decode()
    assert "secret" not in data and [b["type"] for b in blocks(check_stream(data))] == ["text"]


def test_an_error_ends_the_stream_with_nothing_after_it():
    enc = encode.MessageStreamEncoder("m", "msg_x", 1, show_thinking=False)
    data = enc.start() + enc.event(TextDelta("x")) + enc.error(RateLimited("slow down"))
    data += enc.tail()
    records = check_stream(data.decode(), error=True)
    assert records[-1][1] == {"type": "error",
                              "error": {"type": "rate_limit_error", "message": "slow down"}}


def test_an_unknown_event_fails_instead_of_vanishing():
    class Novel:
        pass
    with pytest.raises(AssertionError):
        encode.MessageStreamEncoder("m", "msg_x", 1, show_thinking=True).event(Novel())


def test_the_sdk_accumulates_the_golden_stream():
    """The official SDK's own accumulator on the golden bytes: what a client ends up with."""
    data = (DATA / "anthropic_stream.golden").read_bytes()

    def handler(request):
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})
    c = anthropic.Anthropic(api_key="k", base_url="http://gw.local", max_retries=0,
                            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with c.messages.stream(model="claude-sonnet-4-5", max_tokens=10,
                           messages=[{"role": "user", "content": "x"}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[0].signature == "kimi-gateway.msg_golden"
    assert final.content[1].citations[0].url == "https://example.com/a"
    assert final.content[2].input == {"city": "Paris", "days": 2}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 34
    assert final.usage.input_tokens == 12
