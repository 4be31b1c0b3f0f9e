"""Tool calling meeting the rest of the turn: stop sequences, corrective follow-ups, stored
conversations, bad input. Through the official openai SDK, the gateway and the emulator."""

from __future__ import annotations

import json

import aiohttp
import pytest

from kimi.emulator import Reply

from test_tools_e2e import (ASK, CALL_FORMS, TOOLS, Person, agent_step, collect_stream,
                            no_markers, prompts)


@pytest.mark.parametrize("stream", [False, True])
async def test_nothing_after_a_stop_sequence_not_even_a_block_cut_short(gw, emu, stream):
    # The stop sequence and a tool block that starts after it arrive in one piece.
    emu.state.replies.append(Reply(text='Sure. STOP <tool_call name="get_weather">{"city": "Pa',
                                   chunk=1000))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=TOOLS,
                                                  stop=["STOP"], stream=stream)
    if stream:
        text, _, calls, finish = await collect_stream(r)
    else:
        msg = r.choices[0].message
        text, calls, finish = msg.content, msg.tool_calls or [], r.choices[0].finish_reason
    assert text == "Sure. " and not calls and finish == "stop"
    no_markers(text)


async def test_a_call_after_a_stop_sequence_is_dropped_however_it_is_chunked(gw, emu):
    emu.state.replies.append(Reply(text="Sure. STOP " + CALL_FORMS["ours"], chunk=1000))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=TOOLS,
                                                  stop=["STOP"])
    assert r.choices[0].message.content == "Sure. "
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"


async def test_a_partial_opener_held_at_a_stop_sequence_does_not_leak(gw, emu):
    emu.state.replies.append(Reply(text="Sure. STOP <tool_", chunk=1000))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=TOOLS,
                                                  stop=["STOP"])
    assert r.choices[0].message.content == "Sure. "


async def test_an_empty_reply_gets_a_follow_up_that_does_not_demand_a_call(gw, emu):
    emu.state.replies.append(Reply(think="Hmm.", text=""))
    emu.state.replies.append(Reply(text="It is sunny in Paris."))
    r = await gw.client().chat.completions.create(model="kimi-thinking", messages=ASK,
                                                  tools=TOOLS)
    assert r.choices[0].message.content == "It is sunny in Paris."
    follow_up = prompts(emu)[1]
    assert "no visible output" in follow_up
    assert "did not contain a valid tool call" not in follow_up


async def test_a_missing_required_call_is_asked_for_as_such(gw, emu):
    emu.state.replies.append(Reply(text="I think it is sunny."))
    emu.state.replies.append(Reply(text=CALL_FORMS["ours"]))
    await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=TOOLS,
                                              tool_choice="required")
    follow_up = prompts(emu)[1]
    assert "did not call a tool" in follow_up and "error:" not in follow_up


@pytest.mark.parametrize("first_choice", [
    "none", {"type": "function", "function": {"name": "get_weather"}}])
async def test_a_continued_chat_learns_the_tools_it_was_not_told_about(gw, emu, first_choice):
    client = gw.client()
    history = list(ASK)
    emu.state.replies.append(Reply(text=CALL_FORMS["ours"] if first_choice != "none"
                                   else "Let me think."))
    r = await client.chat.completions.create(model="kimi", messages=history, tools=TOOLS,
                                             tool_choice=first_choice)
    msg = r.choices[0].message
    history.append(msg.model_dump(exclude_none=True))
    if msg.tool_calls:
        history.append({"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"})
    else:
        history.append({"role": "user", "content": "Read /etc/motd then."})
    await agent_step(client, history, "Done.", emu)
    sent = prompts(emu)
    assert '<tool name="read_file">' not in sent[0]
    assert emu.state.chat_requests[1].get("chat_id"), "the chat is continued"
    assert '<tool name="read_file">' in sent[1], "the tool list it never saw is sent now"


async def test_an_unchanged_contract_is_not_resent(gw, emu):
    client = gw.client()
    history = list(ASK)
    _, msg = await agent_step(client, history, CALL_FORMS["ours"], emu)
    history.append({"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"})
    await agent_step(client, history, "Sunny.", emu)
    assert "[TOOLS]" in prompts(emu)[0] and "[TOOLS]" not in prompts(emu)[1]


@pytest.mark.parametrize("field", [
    {"tools": [{"type": ["function"], "function": {"name": "x"}}]},
    {"tools": TOOLS, "tool_choice": {"type": ["function"]}},
    {"response_format": {"type": ["json_object"]}},
    {"messages": [{"role": ["user"], "content": "hi"}]},
])
async def test_odd_tool_fields_are_a_400_not_a_500(gw, field):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions",
                          json={"model": "kimi", "messages": ASK, **field}) as r:
            assert r.status == 400, await r.text()
            assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_an_allowed_tools_entry_of_an_odd_type_is_ignored_not_a_500(gw, emu):
    emu.state.replies.append(Reply(text="Sunny."))
    r = await gw.client().chat.completions.create(
        model="kimi", messages=ASK, tools=TOOLS,
        tool_choice={"type": "allowed_tools", "allowed_tools": {
            "mode": "auto", "tools": [{"type": {"a": 1}}, {"type": "function",
                                                          "function": {"name": "read_file"}}]}})
    assert r.choices[0].message.content == "Sunny."
    assert '<tool name="read_file">' in prompts(emu)[0]
    assert '<tool name="get_weather">' not in prompts(emu)[0]


SEARCH_RESULTS = [{"title": "Ada", "url": "https://ada.example", "snippet": "s", "siteName": "a"}]


async def test_structured_output_with_search_is_json_only(gw, emu):
    cite = "\ue3a0cite\ue3a3web_search:1#0\ue3a8"
    emu.state.replies.append(Reply(text='{"name": "Ada", "age": 36}' + cite,
                                   search=SEARCH_RESULTS))
    r = await gw.client().chat.completions.parse(
        model="kimi-search", messages=[{"role": "user", "content": "latest news on Ada"}],
        response_format=Person)
    assert r.choices[0].message.parsed == Person(name="Ada", age=36)
    assert "Sources" not in r.choices[0].message.content


async def test_structured_output_with_think_tags_is_json_only(start_gateway, token, emu):
    gw = await start_gateway(kimi={"tokens": (token,), "think_tags": True})
    emu.state.replies.append(Reply(think="Ada is 36.", text='{"name": "Ada", "age": 36}'))
    r = await gw.client().chat.completions.parse(model="kimi-thinking", messages=ASK,
                                                 response_format=Person)
    assert r.choices[0].message.parsed == Person(name="Ada", age=36)


PATCH_TOOL = {"type": "custom", "custom": {"name": "apply_patch",
                                           "description": "Applies a patch to the repository."}}
PATCH = "*** Begin Patch\n*** Update File: a.py\n-x = 1\n+x = 2\n*** End Patch"


async def test_a_freeform_call_echoed_back_continues_the_chat_in_its_own_format(gw, emu):
    client = gw.client()
    history = list(ASK)
    _, msg = await agent_step(client, history, f'<tool_call name="apply_patch">\n{PATCH}\n'
                              "</tool_call>", emu, tools=[PATCH_TOOL])
    call = msg.tool_calls[0]
    assert call.function.name == "apply_patch"
    history.append({"role": "tool", "tool_call_id": call.id, "content": "Done."})
    await agent_step(client, history, "Patched.", emu, tools=[PATCH_TOOL])
    assert emu.state.chat_requests[1].get("chat_id"), "the chat is continued"
    assert "Applies a patch" not in prompts(emu)[1]


async def test_invalid_json_with_tools_offered_gets_the_json_follow_up(gw, emu):
    emu.state.replies.append(Reply(text='{"name": "Ada"}'))
    emu.state.replies.append(Reply(text='{"name": "Ada", "age": 36}'))
    r = await gw.client().chat.completions.create(
        model="kimi", messages=ASK, tools=TOOLS,
        response_format={"type": "json_schema", "json_schema": {
            "name": "Person", "schema": Person.model_json_schema()}})
    assert Person.model_validate_json(r.choices[0].message.content) == Person(name="Ada", age=36)
    follow_up = prompts(emu)[1]
    assert "requested JSON format" in follow_up and "age" in follow_up
    assert "tool call" not in follow_up


async def test_thinking_that_ends_in_a_possible_marker_stays_before_the_answer(start_gateway,
                                                                              token, emu):
    gw = await start_gateway(kimi={"tokens": (token,), "think_tags": True})
    emu.state.replies.append(Reply(think="I will answer with `x`", text="Answer.", chunk=1000))
    r = await gw.client().chat.completions.create(model="kimi-thinking", messages=ASK,
                                                  tools=TOOLS)
    assert r.choices[0].message.content == "<think>\nI will answer with `x`\n</think>\n\nAnswer."


async def test_a_lone_surrogate_escape_in_arguments_or_json_is_replaced_not_an_error(gw, emu):
    emu.state.replies.append(Reply(
        text='<tool_call name="get_weather">{"city": "Par\\ud83d is \\ud83d\\ude00"}</tool_call>'))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=TOOLS)
    args = json.loads(r.choices[0].message.tool_calls[0].function.arguments)
    assert args == {"city": "Par\ufffd is \U0001F600"}
    emu.state.replies.append(Reply(text='{"name": "Ada\\udc00"}'))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK,
                                                  response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content) == {"name": "Ada\ufffd"}


async def test_a_draft_3_schema_with_required_true_is_no_internal_error(gw, emu):
    emu.state.replies.append(Reply(text='{"a": "x"}'))
    schema = {"type": "object", "required": True,
              "properties": {"a": {"type": "string", "required": True}}}
    r = await gw.client().chat.completions.create(
        model="kimi", messages=ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "A", "schema": schema}})
    assert json.loads(r.choices[0].message.content) == {"a": "x"}


@pytest.mark.parametrize("schema", [
    {"type": "object", "required": True, "properties": {"city": {"type": "string",
                                                                 "required": True}}},
    {"type": "object", "properties": ["city"], "required": [["city"]]},
    {"type": "object", "properties": {"city": {"type": {"odd": 1}}}},
])
async def test_odd_tool_schemas_still_make_calls(gw, emu, schema):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": schema}}
    emu.state.replies.append(Reply(text='<tool_call name="get_weather">"Paris"</tool_call>'))
    emu.state.replies.append(Reply(text=CALL_FORMS["ours"]))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=[tool])
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"


async def test_a_schema_with_a_non_list_all_of_still_makes_a_call(gw, emu):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "allOf": True, "properties": {"city": {"type": "string"}}}}}
    emu.state.replies.append(Reply(text=CALL_FORMS["ours"]))
    r = await gw.client().chat.completions.create(model="kimi", messages=ASK, tools=[tool])
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"


async def test_a_history_ending_in_an_assistant_prefill_is_answered_not_refused(gw, emu):
    client = gw.client()
    history = list(ASK)
    emu.state.replies.append(Reply(text="Sunny."))
    r = await client.chat.completions.create(model="kimi", messages=history)
    history += [{"role": "assistant", "content": r.choices[0].message.content},
                {"role": "user", "content": "And tomorrow?"},
                {"role": "assistant", "content": "Tomorrow it will be"}]
    emu.state.replies.append(Reply(text=" rainy."))
    r = await client.chat.completions.create(model="kimi", messages=history)
    assert r.choices[0].message.content == " rainy."


async def test_a_request_without_tools_still_shows_the_calls_in_its_history(gw, emu):
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"},
        {"role": "user", "content": "Summarise."}]
    emu.state.replies.append(Reply(text="Warm."))
    await gw.client().chat.completions.create(model="kimi", messages=history)
    sent = prompts(emu)[0]
    assert 'get_weather with {"city":"Paris"}' in sent and "21 degrees" in sent
