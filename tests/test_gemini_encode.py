"""The Gemini and legacy-completions encoders against golden bytes (tests/data/gemini_*,
completions_*), and their contract: every canonical event has an encoding or is dropped on
purpose; an unknown one fails. Regenerate with UPDATE_GOLDEN=1 and read the diff. The
decoder's wire forms (camelCase and the SDK's snake_case, OpenAPI schemas) are checked here
too, without a network."""

from __future__ import annotations

import base64
import re

import orjson
import pytest

from kimi.api.completions import encode as legacy
from kimi.api.gemini import encode
from kimi.api.gemini.contents import RAW_BASE64, claim_inline_data
from kimi.api.gemini.decode import decode_generate
from kimi.canonical.events import (ChatResult, Citation, Finish, FinishReason, ReasoningDelta,
                                   TextDelta, Usage)
from kimi.canonical.tools import ChoiceMode, ToolCall, ToolKind
from kimi.errors import InvalidRequest, RateLimited
from kimi.web import inline
from kimi.web.inline import BodyScanner, InlinePayload
from tests.golden import golden


EVENTS = [
    ReasoningDelta("Thinking \u2026"),
    TextDelta("Hello \u4e16\u754c \U0001F389 [1]"),
    Citation("1", "https://example.com/a", "A", 1, 11, 14),   # the "[1]" above
    ToolCall("call_abc", "get_weather", {"city": "Paris", "days": 2}, index=0),
    ToolCall("call_def", "apply_patch", "*** Begin Patch\n+x\n*** End Patch", ToolKind.CUSTOM, 1),
    Finish(FinishReason.TOOL_CALLS),
    Usage(12, 34, 5),
]


def test_stream_matches_the_golden_file():
    enc = encode.StreamEncoder("kimi", "resp-golden", include_thoughts=True)
    data = b"".join(enc.event(ev) or b"" for ev in EVENTS) + enc.tail()
    golden("gemini_stream.golden", data)


def test_thoughts_are_dropped_unless_asked():
    enc = encode.StreamEncoder("kimi", "r", include_thoughts=False)
    assert enc.event(ReasoningDelta("x")) is None


def test_response_body_matches_the_golden_file():
    result = ChatResult(text="Hello \u4e16\u754c [1]", reasoning="Thinking",
                        finish_reason=FinishReason.TOOL_CALLS,
                        citations=[Citation("1", "https://example.com/a", "A", 1, 9, 12)],
                        tool_calls=[e for e in EVENTS if type(e) is ToolCall],
                        usage=Usage(12, 34, 5))
    body = encode.response_body(result, "kimi", "resp-golden", include_thoughts=True)
    golden("gemini_response.golden", orjson.dumps(body, option=orjson.OPT_INDENT_2))
    support = body["candidates"][0]["groundingMetadata"]["groundingSupports"][0]["segment"]
    assert "Hello \u4e16\u754c [1]".encode()[support["startIndex"]:support["endIndex"]] == b"[1]"


@pytest.mark.parametrize("reason,wire", [(FinishReason.LENGTH, "MAX_TOKENS"),
                                         (FinishReason.CONTENT_FILTER, "SAFETY"),
                                         (FinishReason.STOP, "STOP")])
def test_finish_reasons(reason, wire):
    result = ChatResult(text="x", finish_reason=reason, finish_message="blocked")
    cand = encode.response_body(result, "kimi", "r", False)["candidates"][0]
    assert cand["finishReason"] == wire
    assert ("finishMessage" in cand) == (reason == FinishReason.CONTENT_FILTER)


def test_an_unknown_event_fails_instead_of_vanishing():
    class Novel:
        pass
    for enc in (encode.StreamEncoder("kimi", "r", True), legacy.ChunkEncoder("kimi", "c")):
        with pytest.raises(AssertionError):
            enc.event(Novel())


def test_errors_in_googles_shape():
    assert encode.error_body(RateLimited("slow down")) == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    assert encode.error_chunk(InvalidRequest("bad")).startswith(b'data: {"error":{"code":400')


def test_legacy_completion_stream_matches_the_golden_file(monkeypatch):
    monkeypatch.setattr(legacy.time, "time", lambda: 1_800_000_000.0)
    enc = legacy.ChunkEncoder("kimi", "cmpl-golden")
    data = enc.chunk("Echo: ") + b"".join(enc.event(ev) or b"" for ev in EVENTS) + legacy.DONE
    golden("completions_stream.golden", data)
    body = legacy.completion_body("kimi", "cmpl-golden", ChatResult(text="Hi", usage=Usage(1, 2)),
                                  "Echo: ")
    golden("completions_body.golden", orjson.dumps(body, option=orjson.OPT_INDENT_2))


# --- the decoder's wire forms ---------------------------------------------------------------

def test_snake_case_and_openapi_schemas_decode_like_camel_case():
    camel = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
             "tools": [{"functionDeclarations": [
                 {"name": "f", "parametersJsonSchema": {"type": "object",
                                                        "properties": {"n": {"type": "integer"}}}},
                 {"name": "g", "parameters": {"type": "OBJECT", "properties": {
                     "s": {"type": "STRING", "nullable": True},
                     "xs": {"type": "ARRAY", "items": {"type": "NUMBER"}, "min_items": 1}},
                     "property_ordering": ["s", "xs"]}}]}],
             "toolConfig": {"functionCallingConfig": {"mode": "any",
                                                      "allowedFunctionNames": ["g"]}},
             "generationConfig": {"thinkingConfig": {"includeThoughts": True},
                                  "maxOutputTokens": 50, "stopSequences": ["END"]}}
    snake = orjson.loads(orjson.dumps(camel).replace(b"parametersJsonSchema",
                                                     b"parameters_json_schema")
                         .replace(b"includeThoughts", b"include_thoughts"))
    for body in (camel, snake):
        g = decode_generate(body, "models/kimi", False)
        req = g.chat
        assert g.include_thoughts and req.spec.thinking and req.model == "kimi"
        assert (req.max_tokens, req.stop) == (50, ("END",))
        assert req.tools.choice.mode == ChoiceMode.REQUIRED and req.tools.choice.allowed == ("g",)
        f, gspec = req.tools.specs
        assert f.parameters["properties"]["n"] == {"type": "integer"}
        assert gspec.parameters == {"type": "object", "properties": {
            "s": {"type": ["string", "null"]},
            "xs": {"type": "array", "items": {"type": "number"}, "minItems": 1}}}


def test_results_without_ids_pair_with_calls_by_name_and_order():
    body = {"contents": [
        {"role": "user", "parts": [{"text": "two cities"}]},
        {"role": "model", "parts": [{"text": "Checking", "thought": True},
                                    {"functionCall": {"id": "c1", "name": "w", "args": {"c": "A"}}},
                                    {"functionCall": {"id": "c2", "name": "w", "args": {"c": "B"}}},
                                    {"functionCall": {"name": "t", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {"output": "1"}}},
                                   {"functionResponse": {"name": "t", "response": {"error": "x"}}},
                                   {"functionResponse": {"name": "w", "response": {"temp": 2}}}]}]}
    msgs = decode_generate(body, "kimi", False).chat.messages
    assert [m.role for m in msgs] == ["user", "assistant", "tool", "tool", "tool"]
    assert msgs[1].text == "" and [c.id for c in msgs[1].tool_calls][:2] == ["c1", "c2"]
    t_id = msgs[1].tool_calls[2].id
    assert [(m.tool_call_id, m.text, m.is_error) for m in msgs[2:]] == [
        ("c1", "1", False), (t_id, "x", True), ("c2", '{"temp":2}', False)]


def test_a_streamed_answer_recorded_chunk_by_chunk_is_one_assistant_message():
    body = {"contents": [{"parts": [{"text": "Hi"}]},
                         {"role": "model", "parts": [{"text": "Hel"}]},
                         {"role": "model", "parts": [{"text": "lo"}]},
                         {"role": "model", "parts": [{"text": ""}]},
                         {"parts": [{"text": "again"}]}]}
    msgs = decode_generate(body, "kimi", False).chat.messages
    assert [(m.role, m.text) for m in msgs] == [("user", "Hi"), ("assistant", "Hello"),
                                                 ("user", "again")]


@pytest.mark.parametrize("body,param", [
    ({}, "contents"),
    ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "!!"}}]}]},
     "contents[0].parts[0].inlineData.data"),
    ({"contents": [{"parts": [{"fileData": {"fileUri": "gs://b/x.pdf"}}]}]},
     "contents[0].parts[0].fileData.fileUri"),
    ({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}, "contents[0].parts[0]"),
    ({"contents": [{"parts": [{"text": "x"}]}],
      "generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
    ({"contents": [{"parts": [{"text": "x"}]}],
      "toolConfig": {"functionCallingConfig": {"allowedFunctionNames": ["nope"]}}},
     "toolConfig.functionCallingConfig.allowedFunctionNames"),
])
def test_bad_input_names_the_field(body, param):
    with pytest.raises(InvalidRequest) as e:
        decode_generate(body, "kimi", False)
    assert e.value.param == param


def test_media_parts_become_attachments():
    body = {"contents": [{"parts": [
        {"text": "Compare"},
        {"inline_data": {"mime_type": "application/pdf", "data": "JVBERi0x-_8"}},
        {"fileData": {"fileUri": "https://files.example/a.png", "mimeType": "image/png",
                      "displayName": "a.png"}}]}]}
    (msg,) = decode_generate(body, "kimi", False).chat.messages
    inline, linked = msg.attachments
    assert (inline.kind, inline.mime, inline.filename, inline.data) == (
        "file", "application/pdf", "file.pdf", b"%PDF-1\xfb\xff")
    assert (linked.kind, linked.url, linked.filename) == ("image", "https://files.example/a.png",
                                                          "a.png")
    assert msg.text == "Compare"


# Google's JS SDK (Gemini CLI) and Dart SDK: /^data: (.*)(?:\n\n|\r\r|\r\n\r\n)/ in JavaScript,
# whose `.` matches no line terminator (\n, \r, U+2028, U+2029).
JS_EVENT = re.compile("data: ([^\n\r\u2028\u2029]*)(?:\n\n|\r\r|\r\n\r\n)")


def js_sdk_events(raw: str) -> list[dict]:
    out = []
    while raw:
        m = JS_EVENT.match(raw)
        assert m, f"the JS SDK would stall at {raw[:60]!r}"
        out.append(orjson.loads(m.group(1)))
        raw = raw[m.end():]
    return out


def test_the_js_sdk_reads_every_event_even_with_line_separators():
    text = "line\u2028separator and paragraph\u2029end \u4e16"
    enc = encode.StreamEncoder("kimi", "r", include_thoughts=True)
    raw = (enc.keepalive() + enc.event(ReasoningDelta("a\u2028b")) + enc.event(TextDelta(text)) +
           enc.event(ToolCall("c", "f", {"s": "\u2029"})) + (enc.event(Finish()) or b"") +
           enc.event(Usage(1, 2)) + encode.error_chunk(InvalidRequest("x\u2028y"))).decode()
    events = js_sdk_events(raw)
    parts = [p for e in events[:-1] for p in e["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts if not p.get("thought")) == text
    assert parts[-2]["functionCall"]["args"] == {"s": "\u2029"}
    assert events[-1]["error"]["message"] == "x\u2028y"


def test_large_inline_data_stays_decoded_from_the_body_scanner(monkeypatch):
    """inlineData.data is plain base64 under "data": the body scanner decodes it while the
    body streams in, the claim keeps it decoded, the decoder attaches it as it is."""
    monkeypatch.setattr(inline, "INLINE_MIN", 64)
    doc = bytes(range(256)) * 4
    body = orjson.dumps({"contents": [{"parts": [
        {"text": "What is it?"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(doc).decode()}}]}],
        "other": {"data": base64.b64encode(doc).decode()}})
    scanner = BodyScanner(10**8, RAW_BASE64)
    for i in range(0, len(body), 100):
        scanner.feed(body[i:i + 100])
    scanner.finish()
    parsed = orjson.loads(scanner.out)
    claim_inline_data(parsed, scanner.take)
    scanner.restore(parsed)
    try:
        assert parsed["other"]["data"] == base64.b64encode(doc).decode(), "unclaimed: text again"
        (msg,) = decode_generate(parsed, "kimi", False).chat.messages
        (a,) = msg.attachments
        assert isinstance(a.data, InlinePayload) and a.data.data == doc
        assert (a.kind, a.mime) == ("image", "image/png")
    finally:
        scanner.close()
