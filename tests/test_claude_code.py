"""A recorded-shape Claude Code main-loop request (tests/data/claude_code_main.json: 22 tools,
billing block, cache_control, thinking, metadata, context_management, ?beta=true) through a
5-step tool loop against the emulator, sent the way Claude Code sends it: the whole history
every step, thinking blocks replayed, cache_control moved to the newest block, a new billing
block each time. Upstream the billing block never appears, and from step 2 on only the new
tool results go to the same Kimi chat."""

from __future__ import annotations

import copy
import json
import pathlib

import aiohttp

from kimi.emulator import Reply
from tests.anthropic_sse import blocks, check_stream

FIXTURE = json.loads((pathlib.Path(__file__).parent / "data" / "claude_code_main.json").read_text())
HEADERS = {"Authorization": "Bearer sk-ant-anything", "anthropic-version": "2023-06-01",
           "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                             "fine-grained-tool-streaming-2025-05-14,context-management-2025-06-27",
           "user-agent": "claude-cli/2.1.88 (external, cli)", "x-app": "cli",
           "X-Claude-Code-Session-Id": "1fae1a6d-8b7c-4d2e-a1f0-9e8d7c6b5a43"}


def call(name: str, args: dict) -> str:
    return f'<tool_call name="{name}">\n{json.dumps(args)}\n</tool_call>'


STEPS = [
    Reply(think="ZEBRA-THINK-1 run the tests first", chunk=7,
          text="I'll run the tests first.\n" + call("Bash", {"command": "pytest -q",
                                                             "description": "Run the tests"})),
    Reply(think="ZEBRA-THINK-2", text=call("Read", {"file_path": "/home/user/project/calc.py"})),
    Reply(text="Looking for callers.\n" + call("Grep", {"pattern": "add\\(", "-n": True})
          + "\n" + call("Glob", {"pattern": "**/test_*.py"})),
    Reply(text=call("Edit", {"file_path": "/home/user/project/calc.py",
                             "old_string": "return a - b", "new_string": "return a + b"})),
    Reply(think="ZEBRA-THINK-5", text="Fixed: `add()` now returns `a + b`; the test passes."),
]


def prompts(emu) -> list[str]:
    return ["".join((b.get("text") or {}).get("content", "") for b in r["message"]["blocks"])
            for r in emu.state.chat_requests]


def upstream_ids(request: dict) -> tuple:
    m = request["message"]
    return request.get("chat_id") or request.get("chatId"), m.get("parent_id") or m.get("parentId")


def move_cache_breakpoint(messages: list) -> None:
    """Claude Code keeps a cache_control breakpoint on the newest block only."""
    for m in messages:
        for b in m["content"] if isinstance(m["content"], list) else ():
            b.pop("cache_control", None)
    messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}


def results_for(built: list[dict], step: int) -> dict:
    content: list = [{"type": "tool_result", "tool_use_id": b["id"],
                      "content": f"ZEBRA-RESULT-{step}-{i} of {b['name']}"}
                     for i, b in enumerate(x for x in built if x["type"] == "tool_use")]
    if step == 2:
        content.append({"type": "text", "text": "<system-reminder>The TodoWrite tool hasn't "
                                                "been used recently.</system-reminder>"})
    return {"role": "user", "content": content}


async def send(gw, body: dict) -> list:
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/messages?beta=true", json=body, headers=HEADERS) as r:
            assert r.status == 200, await r.text()
            return check_stream((await r.read()).decode())


async def test_claude_code_tool_loop_continues_one_kimi_chat(gw, emu):
    body = copy.deepcopy(FIXTURE)
    history, usage, message_ids = body["messages"], [], []
    for step, reply in enumerate(STEPS, start=1):
        emu.state.replies.append(reply)
        body["system"][0]["text"] = ("x-anthropic-billing-header: cc_version=2.1.88.a3f; "
                                     f"cc_entrypoint=cli; cch={step:05d};")
        move_cache_breakpoint(history)
        records = await send(gw, body)
        message_ids.append((emu.state.last_reply.chat_id, emu.state.last_reply.message_id))
        usage.append(records[0][1]["message"]["usage"]["input_tokens"])
        built = blocks(records)
        history.append({"role": "assistant", "content": built})
        if step < len(STEPS):
            assert records[-2][1]["delta"]["stop_reason"] == "tool_use"
            history.append(results_for(built, step))
    assert records[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert built[0]["type"] == "thinking" and built[-1]["text"].startswith("Fixed:")
    tool_uses = [b for m in history if m["role"] == "assistant" for b in m["content"]
                 if b["type"] == "tool_use"]
    assert [b["name"] for b in tool_uses] == ["Bash", "Read", "Grep", "Glob", "Edit"]
    assert tool_uses[2]["input"] == {"pattern": "add\\(", "-n": True}
    check_upstream(emu, message_ids)
    # The whole logical prompt every time (Claude Code compacts from it), not what went up.
    assert usage[0] > 1500 and usage == sorted(usage) and len(set(usage)) == 5


def check_upstream(emu, message_ids: list) -> None:
    """No billing block anywhere; everything once in step 1; then only the new results, in
    the same Kimi chat, each after the previous answer."""
    sent = prompts(emu)
    assert len(sent) == 5
    assert not any("x-anthropic-billing-header" in p or "cch=" in p for p in sent)
    assert "You are Claude Code" in sent[0] and "make the failing test pass" in sent[0]
    assert "mcp__context7__get-library-docs" in sent[0]
    requests = emu.state.chat_requests
    assert upstream_ids(requests[0]) == (None, None)
    assert len({chat for chat, _ in message_ids}) == 1
    for step in range(2, 6):
        p = sent[step - 1]
        assert f"ZEBRA-RESULT-{step - 1}-0" in p
        assert f"ZEBRA-RESULT-{step - 2}-0" not in p
        for old in ("You are Claude Code", "make the failing test pass", "Executes a given bash",
                    "ZEBRA-THINK", "cache_control"):
            assert old not in p, (step, old)
        assert ("TodoWrite tool hasn't been used" in p) == (step == 3)
        assert upstream_ids(requests[step - 1]) == message_ids[step - 2]
    assert "ZEBRA-RESULT-3-1 of Glob" in sent[3]


async def test_the_first_step_carries_the_whole_request_once(gw, emu):
    emu.state.replies.append(Reply(text="Sure."))
    body = copy.deepcopy(FIXTURE)
    body["stream"] = False
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/messages?beta=true", json=body, headers=HEADERS) as r:
            answer = await r.json()
    assert answer["content"][-1] == {"type": "text", "text": "Sure."}
    assert answer["model"] == FIXTURE["model"] and answer["stop_reason"] == "end_turn"
    (sent,) = prompts(emu)
    assert sent.count("You are Claude Code") == 1 and "billing" not in sent
    assert emu.state.chat_requests[0]["options"]["thinking"] is True


async def test_the_title_side_call_gets_json_of_its_schema(gw, emu):
    """Claude Code's session title call: haiku, no tools, output_config.format json_schema."""
    emu.state.replies.append(Reply(text='Sure! Here it is:\n```json\n{"title": "Fix the failing '
                                        'add test"}\n```'))
    body = {"model": "claude-haiku-4-5-20251001", "max_tokens": 512, "stream": False,
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.88; "
                                                "cc_entrypoint=cli; cch=00042;"},
                       {"type": "text", "text": "Generate a concise, sentence-case title (3-7 "
                                                "words). Return JSON with a single \"title\" field."}],
            "messages": [{"role": "user", "content": "make the failing test pass"}],
            "output_config": {"format": {"type": "json_schema", "schema": {
                "type": "object", "properties": {"title": {"type": "string"}},
                "required": ["title"], "additionalProperties": False}}}}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/messages?beta=true", json=body,
                          headers={**HEADERS, "anthropic-beta": "structured-outputs-2025-12-15"}) as r:
            answer = await r.json()
    assert json.loads(answer["content"][0]["text"]) == {"title": "Fix the failing add test"}
    assert emu.state.chat_requests[0]["options"]["thinking"] is False
    assert "billing" not in prompts(emu)[0]
