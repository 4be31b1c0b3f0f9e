"""The Anthropic decoder on its own: what reaches the canonical request (and so Kimi)."""

from __future__ import annotations

import pytest

from kimi.api.anthropic.decode import decode_messages_request
from kimi.canonical.models import resolve_model
from kimi.errors import InvalidRequest

ALIASES = {"opus": "kimi-thinking", "sonnet": "kimi-thinking", "haiku": "kimi"}
BILLING = "x-anthropic-billing-header: cc_version=2.1.88.a3f; cc_entrypoint=cli; cch=00000;"


def decode(**body):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}], **body}
    return decode_messages_request(body, resolve_model, ALIASES)


@pytest.mark.parametrize("system,expected", [
    ([{"type": "text", "text": BILLING}, {"type": "text", "text": "You are Claude Code."}],
     "You are Claude Code."),
    (BILLING + "\nYou are Claude Code.", "You are Claude Code."),
    ("  " + BILLING, None),
    ([{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
      {"type": "text", "text": "B"}], "A\n\nB"),
    ("Mentions x-anthropic-billing-header: later", "Mentions x-anthropic-billing-header: later"),
])
def test_the_billing_header_never_reaches_the_system_text(system, expected):
    messages = decode(system=system).req.messages
    got = messages[0].text if messages[0].role == "system" else None
    assert got == expected


def test_user_turn_with_results_and_text_becomes_tool_messages_then_user():
    d = decode(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Reading "}, {"type": "text", "text": "both."},
            {"type": "tool_use", "id": "toolu_a", "name": "Read", "input": {"file_path": "a"}},
            {"type": "tool_use", "id": "toolu_b", "name": "Read", "input": {"file_path": "b"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "A"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "is_error": True,
             "content": [{"type": "text", "text": "no such file"}]},
            {"type": "text", "text": "<system-reminder>x</system-reminder>"}]}])
    roles = [(m.role, m.text, m.tool_call_id, m.is_error) for m in d.req.messages]
    assert roles == [("user", "go", None, False), ("assistant", "Reading both.", None, False),
                     ("tool", "A", "toolu_a", False), ("tool", "no such file", "toolu_b", True),
                     ("user", "<system-reminder>x</system-reminder>", None, False)]
    assert [c.id for c in d.req.messages[1].tool_calls] == ["toolu_a", "toolu_b"]


@pytest.mark.parametrize("body,param", [
    ({"max_tokens": None}, "max_tokens"), ({"max_tokens": "10"}, "max_tokens"),
    ({"model": ""}, "model"), ({"messages": []}, "messages"),
    ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
    ({"tools": [{"name": "x", "input_schema": {}}], "tool_choice": {"type": "tool", "name": "y"}},
     "tool_choice.name"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"stop_sequences": "STOP"}, "stop_sequences"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages.0.content.0.tool_use_id"),
])
def test_bad_fields_are_named(body, param):
    with pytest.raises(InvalidRequest) as e:
        decode(**body)
    assert e.value.param == param


def test_unknown_fields_blocks_and_tools_are_ignored():
    d = decode(context_management={"edits": []}, container="c", speed="fast", top_k=5,
               tools=[{"type": "bash_20250124", "name": "bash"},
                      {"type": "code_execution_20250825", "name": "code_execution"}],
               messages=[{"role": "user", "content": [
                   {"type": "text", "text": "hi"}, {"type": "container_upload", "file_id": "f"},
                   {"type": "future_block_type"}]}])
    assert not d.req.tools and d.req.messages[-1].text == "hi"
