"""Every dialect's decoder, fed a wrong type in each field of a full request: a 4xx in the
dialect's own error shape, never a 500 (a traceback in the log)."""

from __future__ import annotations

import copy

import aiohttp
import orjson
import pytest

from kimi.emulator import Reply

PNG = "iVBORw0KGgo="
WRONG = (1, "x", None, [1], {"a": 1})
ANTHROPIC = {
    "model": "claude-sonnet-4-5", "max_tokens": 100, "system": [{"type": "text", "text": "s"}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False,
             "content": [{"type": "text", "text": "r"}]}]}],
    "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}},
              {"type": "web_search_20250305", "name": "web_search"}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
    "thinking": {"type": "enabled", "budget_tokens": 1024}, "stop_sequences": ["x"],
    "metadata": {"user_id": "u"},
    "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}
RESPONSES = {
    "model": "kimi", "instructions": "be", "input": [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "hi"},
            {"type": "input_image", "image_url": "data:image/png;base64," + PNG}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "r"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "p", "input": "raw"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "ok"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}],
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}},
              {"type": "custom", "name": "p",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
              {"type": "web_search"}],
    "tool_choice": "auto", "parallel_tool_calls": True,
    "reasoning": {"effort": "low", "summary": "auto"},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
    "max_output_tokens": 100, "store": True, "metadata": {"a": "b"}, "prompt_cache_key": "k"}
GEMINI = {
    "contents": [
        {"role": "user", "parts": [{"text": "hi"},
                                   {"inlineData": {"mimeType": "image/png", "data": PNG}}]},
        {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "f",
                                                      "args": {"a": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "f",
                                                         "response": {"r": 1}}}]}],
    "systemInstruction": {"parts": [{"text": "s"}]},
    "tools": [{"functionDeclarations": [{"name": "f", "description": "d",
                                         "parameters": {"type": "object"}}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["f"]}},
    "generationConfig": {"maxOutputTokens": 100, "stopSequences": ["x"],
                         "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 100}}}
COMPLETIONS = {"model": "kimi", "prompt": "hi", "max_tokens": 10, "stop": ["x"], "echo": True,
               "stream": False, "stream_options": {"include_usage": True}}
# The other forms of the fields above.
ANTHROPIC_MORE = {
    "model": "claude-haiku-4-5", "max_tokens": 100, "system": "s",
    "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "doc"}},
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
    "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "tool", "name": "f"}, "thinking": {"type": "disabled"}}
RESPONSES_MORE = {
    "model": "kimi", "input": [{"role": "user", "content": [
        {"type": "input_file", "filename": "a.txt",
         "file_data": "data:text/plain;base64,aGk="}]}],
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "allowed_tools", "mode": "auto",
                    "tools": [{"type": "function", "name": "f"}]},
    "text": {"format": {"type": "json_object"}}}
GEMINI_MORE = {
    "contents": {"role": "user", "parts": [{"text": "hi"}]},
    "systemInstruction": "s",
    "tools": [{"function_declarations": [{"name": "f",
                                          "parametersJsonSchema": {"type": "object"}}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    "generationConfig": {"responseMimeType": "application/json",
                         "responseJsonSchema": {"type": "object"}}}
COMPLETIONS_MORE = {"model": "kimi", "prompt": ["hi"], "stop": "x", "n": 1, "logprobs": 0}
DIALECTS = {
    "anthropic": ("/v1/messages", ANTHROPIC, lambda e: e["type"] == "error"
                  and e["error"]["type"] == "invalid_request_error"),
    "responses": ("/v1/responses", RESPONSES,
                  lambda e: e["error"]["type"] == "invalid_request_error"),
    "gemini": ("/v1beta/models/kimi:generateContent", GEMINI,
               lambda e: e["error"]["status"] == "INVALID_ARGUMENT"),
    "completions": ("/v1/completions", COMPLETIONS,
                    lambda e: e["error"]["type"] == "invalid_request_error"),
}
for name, more in (("anthropic", ANTHROPIC_MORE), ("responses", RESPONSES_MORE),
                   ("gemini", GEMINI_MORE), ("completions", COMPLETIONS_MORE)):
    DIALECTS[name + "-more"] = (DIALECTS[name][0], more, DIALECTS[name][2])


def paths(value, prefix=()):
    """Every place in a JSON value, the whole body first."""
    yield prefix
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from paths(child, prefix + (key,))


def replaced(body, path, value):
    if not path:
        return value
    body = copy.deepcopy(body)
    here = body
    for key in path[:-1]:
        here = here[key]
    here[path[-1]] = value
    return body


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_wrong_type_anywhere_is_a_4xx_in_the_dialects_shape(gw, emu, dialect):
    path, body, our_shape = DIALECTS[dialect]
    failures = []
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()     # the full request is served
        for where in paths(body):
            for value in WRONG:
                emu.state.replies.append(Reply(text="ok"))
                async with s.post(gw.url + path, data=orjson.dumps(replaced(body, where, value)),
                                  headers={"Content-Type": "application/json"}) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status >= 500 or (resp.status >= 400 and not our_shape(answer)):
                        failures.append((where, value, resp.status, answer))
                emu.state.replies.clear()
    assert not failures, failures[:5]
