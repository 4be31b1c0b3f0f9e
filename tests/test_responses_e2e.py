"""The OpenAI Responses API end to end: the official openai SDK (and raw HTTP where the wire
itself is the point) -> gateway -> emulator."""

from __future__ import annotations

import json
import pathlib

import aiohttp
import openai
import orjson
import pytest
from pydantic import BaseModel

from kimi.emulator import Fault, Reply, mint_access_token
from tests.responses_sse import CodexStreamError, check_grammar, codex_process_sse, parse

DATA = pathlib.Path(__file__).parent / "data"
SHELL = {"type": "function", "name": "shell", "description": "Runs a command.", "strict": False,
         "parameters": {"type": "object", "properties": {
             "command": {"type": "array", "items": {"type": "string"}}},
             "required": ["command"]}}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Applies a patch.",
              "format": {"type": "grammar", "syntax": "lark",
                         "definition": "start: begin_patch hunk+ end_patch"}}
PATCH = ("*** Begin Patch\n*** Update File: src/app.py\n@@ def main():\n"
         "-    print('hi')  \n+\tprint(\"héllo 🎉\")\n+    return {\"a\": [1, 2]}\n"
         "*** End Patch")
CALL = '<tool_call name="shell">\n{"command": ["ls", "-la"]}\n</tool_call>'
PATCH_CALL = f'<tool_call name="apply_patch">\n{PATCH}\n</tool_call>'


def prompts(emu) -> list[str]:
    return ["".join((b.get("text") or {}).get("content", "") for b in r["message"]["blocks"])
            for r in emu.state.chat_requests]


def chat_ids(emu) -> list:
    return [r.get("chat_id") or r.get("chatId") for r in emu.state.chat_requests]


async def raw_stream(gw, body: dict, **headers) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/responses", json={**body, "stream": True},
                          headers=headers) as resp:
            return resp.status, (await resp.read()).decode()


async def test_create_non_stream_text(gw, emu):
    emu.state.replies.append(Reply(text="Hello there.", think="Thinking it over."))
    r = await gw.client().responses.create(model="kimi-thinking", input="Say hello",
                                           instructions="Be brief.")
    assert r.status == "completed" and r.id.startswith("resp_")
    assert r.output_text == "Hello there."
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert r.output[0].summary[0].text == "Thinking it over."
    assert r.instructions == "Be brief."
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.output_tokens_details.reasoning_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert "Be brief." in prompts(emu)[0] and "Say hello" in prompts(emu)[0]


async def test_stream_and_get_final_response(gw, emu):
    emu.state.replies.append(Reply(text="Streamed words arrive.", think="Plan.", chunk=3))
    stream = await gw.client().responses.create(model="kimi-thinking", input="hi", stream=True)
    kinds, text = [], []
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text.append(event.delta)
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "".join(text) == "Streamed words arrive."
    emu.state.replies.append(Reply(text="Second answer.", chunk=2))
    async with gw.client().responses.stream(model="kimi", input="again") as s:
        final = await s.get_final_response()
    assert final.output_text == "Second answer." and final.status == "completed"


@pytest.mark.parametrize("chunk", [1, 5, 200])
async def test_function_call_round_trip_continues_the_kimi_chat(gw, emu, chunk):
    """Codex's way: store false and the whole history every turn; the second turn sends only
    the tool output upstream, in the same Kimi chat."""
    emu.state.replies.append(Reply(text="Listing files. " + CALL, chunk=chunk))
    client = gw.client()
    base = dict(model="kimi", instructions="You are a coding agent.", tools=[SHELL],
                store=False)
    history = [{"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "List the files please"}]}]
    r = await client.responses.create(input=history, **base)
    first_chat = emu.state.last_reply.chat_id
    call = r.output[-1]
    assert call.type == "function_call" and call.name == "shell"
    assert json.loads(call.arguments) == {"command": ["ls", "-la"]}
    assert call.call_id.startswith("call_")
    emu.state.replies.append(Reply(text="There are two files.", chunk=chunk))
    history += [o.model_dump(exclude_none=True) for o in r.output]
    history.append({"type": "function_call_output", "call_id": call.call_id,
                    "output": "a.txt\nb.txt"})
    r2 = await client.responses.create(input=history, **base)
    assert r2.output_text == "There are two files."
    assert chat_ids(emu) == [None, first_chat]
    assert "a.txt" in prompts(emu)[1] and "List the files please" not in prompts(emu)[1]


async def test_custom_tool_call_keeps_the_patch_byte_for_byte(gw, emu):
    emu.state.replies.append(Reply(text=PATCH_CALL, chunk=7))
    status, raw = await raw_stream(gw, {"model": "kimi", "input": "fix it",
                                        "tools": [SHELL, PATCH_TOOL]})
    assert status == 200
    events = parse(raw)
    final = check_grammar(events)
    item = final["output"][-1]
    assert item["type"] == "custom_tool_call" and item["name"] == "apply_patch"
    assert item["input"] == PATCH
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH
    items, completed = codex_process_sse(raw)
    assert [(i["type"], i.get("input")) for i in items] == [("custom_tool_call", PATCH)]
    assert completed["usage"]["output_tokens"] > 0


class Person(BaseModel):
    name: str
    age: int


async def test_structured_output(gw, emu):
    emu.state.replies.append(Reply(text='Here: {"name": "Ada", "age": 36}'))
    r = await gw.client().responses.parse(model="kimi", input="Who?", text_format=Person)
    assert r.output_parsed == Person(name="Ada", age=36)
    assert json.loads(r.output_text) == {"name": "Ada", "age": 36}


async def test_previous_response_id_across_a_restart(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)})
    emu.state.replies.append(Reply(text="Noted: the code word is heron."))
    first = await gw.client().responses.create(model="kimi", input="Remember heron.")
    first_chat = emu.state.last_reply.chat_id
    gw2 = await start_gateway(kimi={"tokens": (token,)})   # same store file
    emu.state.replies.append(Reply(text="It was heron."))
    second = await gw2.client().responses.create(model="kimi", input="What was the word?",
                                                 previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "It was heron."
    assert chat_ids(emu) == [None, first_chat]
    assert prompts(emu)[1] == "What was the word?"      # only the new turn went upstream
    got = await gw2.client().responses.retrieve(second.id)
    assert got.output_text == "It was heron."
    await gw2.client().responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        await gw2.client().responses.retrieve(second.id)


async def test_unknown_previous_response_id_is_404(gw, emu):
    with pytest.raises(openai.NotFoundError) as e:
        await gw.client().responses.create(model="kimi", input="x",
                                           previous_response_id="resp_nope")
    assert e.value.body["code"] == "previous_response_not_found"
    assert emu.state.chat_requests == []


async def test_stored_responses_are_the_callers_own(start_gateway, emu):
    gw = await start_gateway()      # callers bring their own Kimi tokens
    alice, bob = mint_access_token("alice"), mint_access_token("bob")
    emu.state.replies.append(Reply(text="secret"))
    r = await gw.client(api_key=alice).responses.create(model="kimi", input="hi")
    with pytest.raises(openai.NotFoundError):
        await gw.client(api_key=bob).responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as e:
        await gw.client(api_key=bob).responses.create(model="kimi", input="x",
                                                      previous_response_id=r.id)
    assert e.value.body["code"] == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        await gw.client(api_key=bob).responses.delete(r.id)
    assert (await gw.client(api_key=alice).responses.retrieve(r.id)).output_text == "secret"


async def test_store_false_is_not_retrievable(gw, emu):
    emu.state.replies.append(Reply(text="gone"))
    r = await gw.client().responses.create(model="kimi", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        await gw.client().responses.retrieve(r.id)


CODEX_HEADERS = {"Content-Encoding": "zstd", "Content-Type": "application/json",
                 "OpenAI-Beta": "responses=experimental", "originator": "codex_cli_rs",
                 "session_id": "0199a2b4-7c3e-7d41-9f0e-5b1a2c3d4e5f",
                 "Accept": "text/event-stream"}


async def codex_turn(gw, body: dict) -> tuple[list[dict], dict]:
    """One Codex request as Codex sends it (zstd body) and reads it (process_sse)."""
    from backports import zstd
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/responses", data=zstd.compress(orjson.dumps(body)),
                          headers=CODEX_HEADERS) as resp:
            assert resp.status == 200, await resp.text()
            raw = (await resp.read()).decode()
    check_grammar(parse(raw))
    return codex_process_sse(raw)


async def test_a_codex_loop_of_three_steps(gw, emu):
    """Codex's recorded request shape through patch -> command -> answer: the patch arrives
    byte for byte, and from step 2 only the new tool output goes upstream, in one chat."""
    body = orjson.loads((DATA / "codex_request.json").read_bytes())
    body["tools"][2]["format"]["definition"] = (DATA / "codex_apply_patch.lark").read_text()
    emu.state.replies.append(Reply(text=PATCH_CALL, think="I will patch the file.", chunk=5))
    items, completed = await codex_turn(gw, body)
    assert [i["type"] for i in items] == ["reasoning", "custom_tool_call"]
    patch = items[-1]
    assert patch["input"] == PATCH and completed["usage"]["input_tokens"] > 0
    first = prompts(emu)[0]
    assert "exec_command" in first and "apply_patch" in first and "Rename the greeting" in first
    assert "local_shell" not in first and "image_generation" not in first
    assert any(t.get("type") == "TOOL_TYPE_SEARCH"
               for t in emu.state.chat_requests[0].get("tools", []))
    chat = emu.state.last_reply.chat_id

    body["input"] += items + [{"type": "custom_tool_call_output", "call_id": patch["call_id"],
                               "output": "Success. Updated the following files:\nM src/app.py"}]
    emu.state.replies.append(Reply(text='<tool_call name="exec_command">\n'
                                   '{"cmd": "make test"}\n</tool_call>', chunk=3))
    items, _ = await codex_turn(gw, body)
    calls = [i for i in items if i["type"] != "reasoning"]
    assert [(i["type"], json.loads(i["arguments"])) for i in calls] == \
        [("function_call", {"cmd": "make test"})]
    assert "M src/app.py" in prompts(emu)[1] and "Rename the greeting" not in prompts(emu)[1]

    body["input"] += items + [{"type": "function_call_output", "call_id": calls[0]["call_id"],
                               "output": "4 passed"}]
    emu.state.replies.append(Reply(text="Renamed the greeting; the 4 tests pass.", chunk=4))
    items, _ = await codex_turn(gw, body)
    assert items[-1]["content"][0]["text"] == "Renamed the greeting; the 4 tests pass."
    assert "4 passed" in prompts(emu)[2] and "M src/app.py" not in prompts(emu)[2]
    assert chat_ids(emu) == [None, chat, chat]


async def test_unknown_and_reasoning_items_are_skipped(gw, emu):
    emu.state.replies.append(Reply(text="fine"))
    r = await gw.client().responses.create(model="kimi", input=[
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text",
                                                        "text": "SECRET-THOUGHT"}],
         "encrypted_content": "opaque"},
        {"type": "local_shell_call", "call_id": "c1", "action": {"type": "exec"}},
        {"type": "item_reference", "id": "msg_1"},
        {"type": "some_future_item", "payload": 1},
        {"role": "user", "content": "the question"}])
    assert r.output_text == "fine"
    assert prompts(emu) == ["the question"]


async def test_input_items_and_input_tokens(gw, emu):
    emu.state.replies.append(Reply(text="Listing. " + CALL))
    client = gw.client()
    r = await client.responses.create(model="kimi", input="list files", tools=[SHELL],
                                      instructions="Be an agent.")
    emu.state.replies.append(Reply(text="Two files."))
    r2 = await client.responses.create(model="kimi", previous_response_id=r.id, tools=[SHELL],
                                       input=[{"type": "function_call_output",
                                               "call_id": r.output[-1].call_id,
                                               "output": "a b"}])
    page = await client.responses.input_items.list(r2.id, order="asc")
    got = [(i.type, getattr(i, "role", None)) for i in page.data]
    assert got == [("message", "system"), ("message", "user"), ("message", "assistant"),
                   ("function_call", None), ("function_call_output", None)]
    assert page.data[3].call_id == r.output[-1].call_id and page.data[4].output == "a b"
    newest = await client.responses.input_items.list(r2.id, limit=2)
    assert [i.type for i in newest.data] == ["function_call_output", "function_call"]
    assert newest.has_more
    count = await client.responses.input_tokens.count(model="kimi", input="list files",
                                                      tools=[SHELL], instructions="Be an agent.")
    assert count.input_tokens == r.usage.input_tokens
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list("resp_missing")


async def test_continuing_from_an_older_response_forks_into_a_fresh_chat(gw, emu):
    client = gw.client()
    emu.state.replies.append(Reply(text="First answer."))
    r1 = await client.responses.create(model="kimi", input="one")
    emu.state.replies.append(Reply(text="Second answer."))
    await client.responses.create(model="kimi", input="two", previous_response_id=r1.id)
    emu.state.replies.append(Reply(text="Forked answer."))
    fork = await client.responses.create(model="kimi", input="two again",
                                         previous_response_id=r1.id)
    assert fork.output_text == "Forked answer."
    assert chat_ids(emu)[1] is not None and chat_ids(emu)[2] is None   # a new chat ...
    assert "one" in prompts(emu)[2] and "First answer." in prompts(emu)[2]  # ... with the past
    assert "two again" in prompts(emu)[2] and "Second answer." not in prompts(emu)[2]


async def test_input_image_and_input_file_are_uploaded(gw, emu):
    import base64
    from tests.test_files_e2e import PDF, PNG
    emu.state.replies.append(Reply(text="A picture and a report."))
    await gw.client().responses.create(model="kimi", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": "data:image/png;base64,"
         + base64.b64encode(PNG).decode()},
        {"type": "input_file", "filename": "q3.pdf",
         "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode()}]}])
    got = sorted((f.name, f.data) for f in emu.state.files.values())
    assert got == sorted([("image.png", PNG), ("q3.pdf", PDF)])
    blocks = emu.state.chat_requests[0]["message"]["blocks"]
    assert len([b for b in blocks if "file" in b]) == 2


async def test_large_inline_files_are_decoded_while_the_body_streams_in(gw, emu):
    import base64
    import os
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
    report = b"%PDF-1.7\n" + os.urandom(200_000)
    emu.state.replies.append(Reply(text="Big ones."))
    await gw.client().responses.create(model="kimi", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Look."},
        {"type": "input_image", "image_url": "data:image/png;base64,"
         + base64.b64encode(image).decode()},
        {"type": "input_file", "filename": "big.pdf",
         "file_data": base64.b64encode(report).decode()}]}])
    got = {f.name: (f.data, f.content_type) for f in emu.state.files.values()}
    assert got == {"image.png": (image, "image/png"), "big.pdf": (report, "application/pdf")}


async def test_stored_responses_expire(gw, emu):
    from kimi.web.keys import RESPONSES
    emu.state.replies.append(Reply(text="short-lived"))
    r = await gw.client().responses.create(model="kimi", input="hi")
    stored = gw.app[RESPONSES]
    assert await stored.purge_expired() == 0
    await stored.repo.store.execute("UPDATE responses SET expires_at = expires_at - ?",
                                    (gw.config.store.conversation_ttl_days * 86400 + 1,))
    with pytest.raises(openai.NotFoundError):
        await gw.client().responses.retrieve(r.id)
    assert await stored.purge_expired() == 1
