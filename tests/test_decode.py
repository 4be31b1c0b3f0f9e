"""Table-driven tests of the pure frame -> event translation and error mapping."""

import pytest

from kimi.canonical.events import ReasoningDelta, Started, TextDelta
from kimi.errors import (InvalidRequest, PaymentRequired, PermissionDenied, RateLimited,
                         UpstreamError, UpstreamUnavailable)
from kimi.upstream.decode import StreamDecoder, UpstreamAuthError, map_connect_error


def run(frames):
    dec = StreamDecoder()
    out = []
    for f in frames:
        for ev in dec.decode(f):
            out.append((type(ev).__name__, getattr(ev, "text", None) or getattr(ev, "chat_id", None)))
    return dec, out


def text(op, mask, content, bid="1"):
    return {"op": op, "mask": mask, "block": {"id": bid, "text": {"content": content}}}


def think(op, mask, content, bid="0"):
    return {"op": op, "mask": mask, "block": {"id": bid, "think": {"content": content}}}


CASES = [
    ("heartbeat is nothing", [{"heartbeat": {}}], []),
    ("chat id starts", [{"op": "set", "chat": {"id": "c1", "name": "x"}}], [("Started", "c1")]),
    ("chat.name is nothing", [{"op": "set", "mask": "chat.name", "chat": {"name": "t"}}], []),
    ("user echo is never text",
     [{"op": "set", "mask": "message", "message": {"id": "u", "role": "user",
                                                    "blocks": [{"text": {"content": "PROMPT"}}]}}], []),
    ("set then append", [text("set", "block.text", "Hel"), text("append", "block.text.content", "lo")],
     [("TextDelta", "Hel"), ("TextDelta", "lo")]),
    ("empty set then appends", [text("set", "block.text.content", ""), text("append", "block.text.content", "a"),
                                text("append", "block.text.content", "b")],
     [("TextDelta", "a"), ("TextDelta", "b")]),
    ("set extends what was sent", [text("set", "block.text", "draft"), text("set", "block.text", "draft, final")],
     [("TextDelta", "draft"), ("TextDelta", ", final")]),
    ("set repeating the same text adds nothing", [text("set", "block.text", "same"), text("set", "block.text", "same")],
     [("TextDelta", "same")]),
    ("blocks are separate", [text("set", "block.text", "a", "1"), text("set", "block.text", "a", "2")],
     [("TextDelta", "a"), ("TextDelta", "a")]),
    ("thinking goes to reasoning", [think("set", "block.think", "hmm"), think("append", "block.think.content", "!"),
                                    text("set", "block.text", "ok")],
     [("ReasoningDelta", "hmm"), ("ReasoningDelta", "!"), ("TextDelta", "ok")]),
    ("text flagged thinking is reasoning",
     [{"op": "set", "mask": "block.text", "block": {"id": "1", "text": {"content": "r", "flags": "thinking"}}}],
     [("ReasoningDelta", "r")]),
    ("no mask: inferred from the block", [{"op": "set", "block": {"id": "1", "text": {"content": "x"}}}],
     [("TextDelta", "x")]),
    ("tool blocks are not text", [{"op": "set", "mask": "block.tool", "block": {"id": "5", "tool": {"name": "s"}}}], []),
    ("unknown events are ignored", [{"op": "set", "mask": "block.stage", "block": {"id": "9", "stage": {}}},
                                    {"something": "new"}], []),
    ("done is nothing, reading goes on", [{"done": {}}, text("append", "block.text.content", "late")],
     [("TextDelta", "late")]),
    ("assistant message id starts", [{"op": "set", "mask": "message", "message": {"id": "m2", "role": "assistant"}}],
     [("Started", None)]),
]


@pytest.mark.parametrize("name,frames,expected", CASES, ids=[c[0] for c in CASES])
def test_translation(name, frames, expected):
    assert run(frames)[1] == expected


def test_moderation_status_finishes_with_content_filter():
    dec, _ = run([{"op": "set", "mask": "message.status",
                   "message": {"id": "m", "role": "assistant", "status": "MESSAGE_STATUS_BLOCKED"}}])
    assert dec.finish_reason == "content_filter"


def test_error_frame_raises():
    with pytest.raises(RateLimited):
        run([{"error": {"code": "resource_exhausted"}}])


def dbg(reason=None, paywall=None, message=None):
    d = {"reason": reason} if reason else {}
    if paywall:
        d["paywall"] = paywall
    if message:
        d["localizedMessage"] = {"message": message}
    return [{"debug": d}]


ERRORS = [
    ({"code": "unauthenticated"}, None, UpstreamAuthError, False),
    ({"code": "resource_exhausted", "details": dbg("REASON_SERVER_OVERLOADED_FOR_FREE_USER")}, None, RateLimited, True),
    ({"code": "resource_exhausted", "details": dbg("REASON_X", paywall={"a": 1})}, None, PaymentRequired, False),
    ({"code": "invalid_argument", "details": dbg("REASON_TOKEN_LENGTH_TOO_LONG")}, None, InvalidRequest, False),
    ({"code": "invalid_argument"}, None, InvalidRequest, False),
    ({"code": "permission_denied"}, None, PermissionDenied, False),
    ({"code": "unavailable"}, None, UpstreamUnavailable, True),
    ({"code": "weird"}, None, UpstreamError, False),
    ({"message": "HTTP 429"}, 429, RateLimited, True),
    ({"message": "HTTP 500"}, 500, UpstreamError, True),
    ({"message": "HTTP 401"}, 401, UpstreamAuthError, False),
    ({"code": "failed_precondition", "details": dbg("REASON_CHAT_STREAM_PUSHING")}, None, RateLimited, True),
]


@pytest.mark.parametrize("error,status,cls,retryable", ERRORS)
def test_error_mapping(error, status, cls, retryable):
    e = map_connect_error(error, http_status=status)
    assert type(e) is cls
    assert e.retryable is retryable


def test_error_message_prefers_the_localized_text():
    e = map_connect_error({"code": "resource_exhausted", "message": "raw",
                           "details": dbg("REASON_SERVER_OVERLOADED_FOR_FREE_USER", message="busy now")})
    assert "busy now" in e.message and "REASON_SERVER_OVERLOADED_FOR_FREE_USER" in e.message


@pytest.mark.parametrize("reason,code", [
    ("REASON_SERVER_OVERLOADED_FOR_FREE_USER", "upstream_overloaded"),
    ("REASON_COMPLETION_OVERLOADED", "upstream_overloaded"),
    ("REASON_CHAT_STREAM_PUSHING", "upstream_resource_exhausted"),
    ("", "upstream_resource_exhausted")])
def test_kimi_overload_has_a_code_of_its_own(reason, code):
    """A dialect that answers overload apart (Anthropic's 529) tells it by the code."""
    details = dbg(reason) if reason else []
    e = map_connect_error({"code": "resource_exhausted", "details": details})
    assert isinstance(e, RateLimited) and e.code == code
