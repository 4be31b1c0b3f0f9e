"""The Responses stream on the wire, scenario by scenario, against the grammar
(tests/responses_sse.py) and Codex's reader; errors before and after the start; keep-alive."""

from __future__ import annotations

import aiohttp
import pytest

from kimi.emulator import Fault, Reply
from tests.responses_sse import CodexStreamError, check_grammar, codex_process_sse, parse
from tests.test_responses_e2e import CALL, PATCH, PATCH_CALL, PATCH_TOOL, SHELL, raw_stream

TWO_CALLS = CALL + '\n<tool_call name="shell">\n{"command": ["pwd"]}\n</tool_call>'
SCENARIOS = {
    "text": (Reply(text="Plain answer, nothing else.", chunk=2), {}, ["message"]),
    "reasoning": (Reply(text="Answer.", think="Thinking first.", chunk=3),
                  {"model": "kimi-thinking"}, ["reasoning", "message"]),
    "search": (Reply(citations="e3a0", chunk=3),
               {"model": "kimi", "tools": [{"type": "web_search"}]}, ["message"]),
    "function calls": (Reply(text="Two steps. " + TWO_CALLS, chunk=4), {"tools": [SHELL]},
                       ["message", "function_call", "function_call"]),
    "custom call": (Reply(text=PATCH_CALL, chunk=1), {"tools": [SHELL, PATCH_TOOL]},
                    ["custom_tool_call"]),
    "incomplete": (Reply(text="word " * 400, chunk=7), {"max_output_tokens": 20}, ["message"]),
    "moderation": (Reply(text="Some words before the cut.", chunk=3,
                         fault=Fault("moderation", after=2)), {}, ["message", "message"]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_each_scenario_follows_the_grammar(gw, emu, name):
    reply, extra, types = SCENARIOS[name]
    emu.state.replies.append(reply)
    status, raw = await raw_stream(gw, {"model": "kimi", "input": "search the latest news",
                                        **extra})
    assert status == 200
    events = parse(raw)
    final = check_grammar(events)
    assert [o["type"] for o in final["output"]] == types
    if name in ("incomplete", "moderation"):
        reason = "max_output_tokens" if name == "incomplete" else "content_filter"
        assert events[-1]["type"] == "response.incomplete"
        assert final["incomplete_details"] == {"reason": reason}
        assert final["output"][0]["status"] == "incomplete"
        if name == "moderation":
            assert final["output"][1]["content"][0]["type"] == "refusal"
        with pytest.raises(CodexStreamError):
            codex_process_sse(raw)
        return
    assert events[-1]["type"] == "response.completed" and final["status"] == "completed"
    items, completed = codex_process_sse(raw)
    assert [i["type"] for i in items] == types
    assert completed["id"] == final["id"] and completed["usage"]["input_tokens"] > 0
    if name == "search":
        notes = [e for e in events if e["type"] == "response.output_text.annotation.added"]
        assert notes and [n["annotation_index"] for n in notes] == list(range(len(notes)))
        text = final["output"][0]["content"][0]["text"]
        for note in notes:
            a = note["annotation"]
            assert a["type"] == "url_citation" and a["url"].startswith("http")
            span = text[a["start_index"]:a["end_index"]]
            assert span.startswith("[") or a["url"] in span
        assert any(t.get("type") == "TOOL_TYPE_SEARCH"
                   for t in emu.state.chat_requests[0].get("tools", []))
    if name == "function calls":
        assert [i["arguments"] for i in items[1:]] == ['{"command":["ls","-la"]}',
                                                       '{"command":["pwd"]}']
    if name == "custom call":
        assert items[0]["input"] == PATCH


@pytest.mark.parametrize("fault,code", [
    (dict(code="internal", message="broke"), "server_error"),
    (dict(code="invalid_argument", reason="REASON_TOKEN_LENGTH_TOO_LONG"),
     "context_length_exceeded"),
])
async def test_failure_after_the_start_is_response_failed(gw, emu, fault, code):
    emu.state.replies.append(Reply(fault=Fault("error", after=3, **fault)))
    status, raw = await raw_stream(gw, {"model": "kimi", "input": "hi"})
    assert status == 200
    events = parse(raw)
    final = check_grammar(events)
    assert events[-1]["type"] == "response.failed" and final["status"] == "failed"
    assert final["error"]["code"] == code
    with pytest.raises(CodexStreamError, match=code):
        codex_process_sse(raw)


async def test_codex_reader_needs_response_completed():
    cut = ('event: response.created\ndata: {"type":"response.created","sequence_number":0,'
           '"response":{"id":"resp_1","output":[]}}\n\n')
    with pytest.raises(CodexStreamError, match="before response.completed"):
        codex_process_sse(cut)


async def test_errors_before_the_start_are_openai_error_objects(gw, emu):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/responses", json={"model": "kimi", "input": 5}) as r:
            assert r.status == 400
            body = await r.json()
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["param"] == "input"
        emu.state.replies.append(Reply(fault=Fault("http", status=429)))
        async with s.post(gw.url + "/responses", json={"model": "kimi", "input": "x",
                                                       "stream": True}) as r:
            assert r.status == 429
            assert (await r.json())["error"]["type"] == "rate_limit_error"


async def test_keepalive_is_a_repeated_in_progress_event(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"keepalive_seconds": 0.1})
    emu.state.chunk_delay = 0.35
    emu.state.replies.append(Reply(text="slow words come in here", chunk=8))
    status, raw = await raw_stream(gw, {"model": "kimi", "input": "hi"})
    events = parse(raw)
    check_grammar(events)
    assert sum(e["type"] == "response.in_progress" for e in events) >= 3
    assert events[-1]["type"] == "response.completed"
