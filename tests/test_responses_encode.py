"""The Responses encoder against golden bytes (tests/data/responses_*.golden), its grammar on
every event sequence, and the decoder's canonical messages. Regenerate the golden files with
UPDATE_GOLDEN=1 after an intended change, and read the diff."""

from __future__ import annotations

import orjson
import pytest

from kimi.api.responses.decode import decode_responses_request
from kimi.api.responses.encode import ResponseEncoder
from kimi.canonical.events import (Citation, Finish, FinishReason, ReasoningDelta, TextDelta,
                                   Usage)
from kimi.canonical.tools import ChoiceMode, ToolCall, ToolKind
from kimi.errors import InvalidRequest, RateLimited
from tests.responses_sse import check_grammar, parse
from tests.golden import golden

ECHO = {"model": "kimi", "tools": [], "tool_choice": "auto", "parallel_tool_calls": True}
EVENTS = [
    ReasoningDelta("Thinking \u2026"),
    Citation("1", "https://example.com/a", "A", 1, 15, 18),     # before its text: held
    TextDelta("Hello \u4e16\u754c \U0001F389 [1]"),
    ToolCall("call_abc", "get_weather", {"city": "Paris", "days": 2}, index=0),
    ToolCall("call_def", "apply_patch", "*** Begin Patch\n+x\n*** End Patch", ToolKind.CUSTOM, 1),
    Finish(FinishReason.TOOL_CALLS),
    Usage(12, 34, 5),
]


def encoder() -> ResponseEncoder:
    return ResponseEncoder(ECHO, "resp_golden", 1_800_000_000)


def test_stream_matches_the_golden_file():
    enc = encoder()
    data = enc.head() + b"".join(enc.event(ev) for ev in EVENTS) + enc.tail()
    events = parse(data.decode())
    # The golden file holds the events indented (lines stay short); the bytes are exactly
    # their compact form.
    assert data == b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) +
                            b"\n\n" for e in events)
    golden("responses_stream.golden", orjson.dumps(events, option=orjson.OPT_INDENT_2))
    final = check_grammar(events)
    assert [o["type"] for o in final["output"]] == \
        ["reasoning", "message", "function_call", "custom_tool_call"]
    assert final["output"][1]["content"][0]["annotations"][0]["url"] == "https://example.com/a"


def test_response_object_matches_the_golden_file():
    enc = encoder()
    for ev in EVENTS:
        enc.event(ev)
    golden("responses_object.golden", orjson.dumps(enc.response(), option=orjson.OPT_INDENT_2))


@pytest.mark.parametrize("reason,status", [(FinishReason.LENGTH, "max_output_tokens"),
                                           (FinishReason.CONTENT_FILTER, "content_filter")])
def test_cut_answers_are_incomplete(reason, status):
    enc = encoder()
    data = enc.head() + enc.event(TextDelta("cut")) + enc.event(Finish(reason)) + \
        enc.event(Usage(1, 1))
    events = parse(data.decode())
    final = check_grammar(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": status}


def test_a_moderation_notice_is_a_refusal():
    enc = encoder()
    data = enc.head() + enc.event(TextDelta("Sure, here")) + \
        enc.event(Finish(FinishReason.CONTENT_FILTER, "blocked by moderation")) + \
        enc.event(Usage(1, 1))
    final = check_grammar(parse(data.decode()))
    assert final["status"] == "incomplete"
    assert [o["content"][0] for o in final["output"]] == [
        {"type": "output_text", "text": "Sure, here", "annotations": []},
        {"type": "refusal", "refusal": "blocked by moderation"}]
    assert enc.texts == ["Sure, here"]


def test_an_error_after_the_start_closes_the_open_item_and_fails():
    enc = encoder()
    err = RateLimited("Kimi is busy", code="rate_limited")
    err.retry_after = 12
    data = enc.head() + enc.event(TextDelta("partial")) + enc.in_band(err) + enc.tail()
    events = parse(data.decode())
    final = check_grammar(events)
    assert final["status"] == "failed"
    assert final["error"] == {"code": "rate_limit_exceeded",
                              "message": "Kimi is busy Please try again in 12s."}


def test_a_keepalive_keeps_the_sequence():
    enc = encoder()
    data = enc.head() + enc.event(TextDelta("a")) + enc.keepalive() + enc.event(TextDelta("b"))
    data += enc.event(Finish()) + enc.event(Usage(1, 2))
    check_grammar(parse(data.decode()))


def test_an_unknown_event_fails_instead_of_vanishing():
    class Novel:
        pass
    with pytest.raises(AssertionError):
        encoder().event(Novel())


# --- decode ---------------------------------------------------------------------------------

def test_history_items_become_the_canonical_messages_the_turn_stores():
    rr = decode_responses_request({"model": "kimi", "instructions": "Be terse.", "input": [
        {"role": "developer", "content": "dev note"},
        {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                     {"type": "input_text", "text": "b"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Let me look. "}]},
        {"type": "reasoning", "id": "rs_2", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                              "text": "Now."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell",
         "arguments": "{\"command\": [\"ls\"]}"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch",
         "input": "*** Begin Patch\n *** End Patch\n"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
        {"type": "custom_tool_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "Done"}]},
        {"type": "mystery"},
    ]})
    got = [(m.role, m.text, m.tool_call_id, m.name) for m in rr.req.messages]
    assert got == [("system", "Be terse.", None, None), ("system", "dev note", None, None),
                   ("user", "a\nb", None, None), ("assistant", "Let me look. Now.", None, None),
                   ("tool", "a.txt", "call_1", "shell"),
                   ("tool", "Done", "call_2", "apply_patch")]
    calls = rr.req.messages[3].tool_calls
    assert calls == (ToolCall("call_1", "shell", {"command": ["ls"]}, ToolKind.FUNCTION, 0),
                     ToolCall("call_2", "apply_patch", "*** Begin Patch\n *** End Patch\n",
                              ToolKind.CUSTOM, 1))


def test_options_map_onto_the_canonical_request():
    rr = decode_responses_request({
        "model": "kimi", "input": "x", "max_output_tokens": 50, "store": False,
        "reasoning": {"effort": "high"}, "parallel_tool_calls": False,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}},
                  {"type": "web_search_preview"}, {"type": "file_search"}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "o", "strict": True,
                            "schema": {"type": "object"}}}})
    req = rr.req
    assert req.max_tokens == 50 and not rr.store and req.spec.search
    assert req.spec.thinking and req.spec.effort == "high"
    assert [s.name for s in req.tools.specs] == ["f"] and not req.tools.parallel
    assert req.tools.choice.mode == ChoiceMode.NAMED and req.tools.choice.name == "f"
    assert req.output.kind == "json_schema" and req.output.strict


@pytest.mark.parametrize("body,param", [
    ({"input": 3}, "input"), ({"input": []}, "input"), ({"input": "x", "store": "no"}, "store"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "x", "reasoning": {"effort": "max"}}, "reasoning.effort"),
    ({"input": "x", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
    ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f1"}]}]},
     "input[0].content[0].image_url"),
])
def test_bad_requests_name_the_field(body, param):
    with pytest.raises(InvalidRequest) as e:
        decode_responses_request({"model": "kimi", **body})
    assert e.value.param == param
