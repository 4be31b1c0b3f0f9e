"""The Gemini dialect end to end: the official google-genai SDK -> gateway -> emulator, on
v1beta (Gemini CLI's) and v1 (the SDK's default)."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel

from kimi.emulator import Fault, Reply, mint_access_token
from kimi.emulator.state import DEFAULT_THINK, default_text

WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city. ZEBRA-DESCRIPTION",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]})
TIME = types.FunctionDeclaration(
    name="get_time", description="The local time.",
    parameters=types.Schema(type="OBJECT", properties={"zone": types.Schema(type="STRING"),
                                                       "hours": types.Schema(type="INTEGER")},
                            required=["zone"]))
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)
TOOLS = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, TIME])],
                                    automatic_function_calling=NO_AFC)
CALL = '<tool_call name="get_weather">\n{"city": "Paris"}\n</tool_call>'


def gemini(gw, api_key: str = "unused", version: str = "v1beta") -> genai.Client:
    return genai.Client(api_key=api_key, http_options=types.HttpOptions(
        base_url=gw.url, api_version=version))


def prompts(emu) -> list[str]:
    return ["".join((b.get("text") or {}).get("content", "") for b in r["message"]["blocks"])
            for r in emu.state.chat_requests]


def chat_of(emu, k: int):
    r = emu.state.chat_requests[k]
    return r.get("chat_id") or r.get("chatId")


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_generate_content(gw, emu, version):
    r = await gemini(gw, version=version).aio.models.generate_content(model="kimi",
                                                                      contents="Hello")
    assert r.text == default_text(1, "Hello")
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert u.prompt_token_count > 0 and u.candidates_token_count > 0
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    assert r.model_version == "kimi" and r.response_id


async def test_thoughts_only_when_asked(gw, emu):
    client = gemini(gw)
    asked = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    r = await client.aio.models.generate_content(model="kimi", contents="Hi", config=asked)
    parts = r.candidates[0].content.parts
    assert parts[0].thought and parts[0].text == DEFAULT_THINK
    assert r.text == default_text(1, "Hi") and r.usage_metadata.thoughts_token_count > 0
    r = await client.aio.models.generate_content(model="kimi-thinking", contents="Hi")
    assert not any(p.thought for p in r.candidates[0].content.parts)
    assert r.usage_metadata.thoughts_token_count > 0, "Kimi thought, the client did not ask to see"
    off = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    r = await client.aio.models.generate_content(model="kimi-thinking", contents="Hi", config=off)
    assert r.usage_metadata.thoughts_token_count is None


async def test_stream(gw, emu):
    emu.state.replies.append(Reply(text="One two three four five.", think="Hmm.", chunk=3))
    cfg = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    chunks = [c async for c in await gemini(gw).aio.models.generate_content_stream(
        model="kimi", contents="Count", config=cfg)]
    parts = [p for c in chunks for p in c.candidates[0].content.parts]
    assert "".join(p.text for p in parts if p.thought) == "Hmm."
    assert "".join(p.text for p in parts if not p.thought) == "One two three four five."
    assert len(chunks) > 4
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count > 0
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])


async def raw_stream(gw, body: dict, model: str = "kimi", **headers) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.url}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                          json=body, headers=headers) as r:
            return r.status, (await r.read()).decode()


def sse_events(raw: str) -> list[dict]:
    assert raw.endswith("\r\n\r\n") and "[DONE]" not in raw
    events = raw.split("\r\n\r\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    return [orjson.loads(e[6:]) for e in events]


async def test_raw_sse_grammar_and_keepalive(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"keepalive_seconds": 0.1})
    emu.state.heartbeat_interval = 0.05
    emu.state.replies.append(Reply(text="after the pause", pause=0.6))
    status, raw = await raw_stream(gw, {"contents": [{"parts": [{"text": "Hi"}]}]})
    assert status == 200 and ": keep-alive" not in raw
    events = sse_events(raw)
    for e in events:
        (cand,) = e["candidates"]
        assert cand["content"]["role"] == "model" and cand["content"]["parts"]
        assert e["responseId"] == events[0]["responseId"] and e["modelVersion"] == "kimi"
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": ""}], "keep-alive first"
    assert "".join(p.get("text", "") for e in events
                   for p in e["candidates"][0]["content"]["parts"]) == "after the pause"
    last = events[-1]
    assert last["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in last
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])
    # The SDK reads the same kind of stream, keep-alives included.
    emu.state.replies.append(Reply(text="after the pause", pause=0.6))
    chunks = [c async for c in await gemini(gw).aio.models.generate_content_stream(
        model="kimi", contents="Hi")]
    assert "".join(c.text or "" for c in chunks) == "after the pause"


async def test_function_call_round_trip_continues_the_kimi_chat(gw, emu):
    """Two calls and an answer; the client sends results without ids (the SDK's
    Part.from_function_response), and each step goes upstream as only the new result."""
    client = gemini(gw)
    history = [types.Content(role="user", parts=[types.Part.from_text(
        text="Weather in Paris, then the time there? " + "RULES " * 300)])]
    steps = [CALL, '<tool_call name="get_time">\n{"zone": "Europe/Paris"}\n</tool_call>',
             "It is 21 degrees and 10:00 in Paris."]
    for k, reply in enumerate(steps):
        emu.state.replies.append(Reply(text=reply))
        r = await client.aio.models.generate_content(model="kimi", contents=history,
                                                     config=TOOLS)
        history.append(r.candidates[0].content)
        if k < 2:
            (fc,) = r.function_calls
            assert fc.id and fc.name == ("get_weather", "get_time")[k]
            assert r.candidates[0].finish_reason == types.FinishReason.STOP
            history.append(types.Content(role="user", parts=[types.Part.from_function_response(
                name=fc.name, response={"output": f"RESULT-{k}"})]))
    assert r.text == steps[-1] and not r.function_calls
    sent = prompts(emu)
    assert "ZEBRA-DESCRIPTION" in sent[0] and "RULES" in sent[0]
    for k in (1, 2):
        assert f"RESULT-{k - 1}" in sent[k] and "RULES" not in sent[k] and len(sent[k]) < 1500
    assert chat_of(emu, 1) and chat_of(emu, 1) == chat_of(emu, 2)


async def test_chat_session_streamed_keeps_continuing(gw, emu):
    """google-genai's chat records a streamed answer chunk by chunk; the next turn still
    matches the stored one, with the call id it was given."""
    chat = gemini(gw).aio.chats.create(model="kimi", config=TOOLS)
    emu.state.replies.append(Reply(text="Let me check. " + CALL, chunk=2))
    calls = [fc async for c in await chat.send_message_stream("Weather in Paris?")
             for fc in (c.function_calls or [])]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]
    emu.state.replies.append(Reply(text="Sunny, 21 degrees.", chunk=2))
    reply = [c.text async for c in await chat.send_message_stream(types.Part.from_function_response(
        name="get_weather", response={"temp": 21}))]
    assert "".join(t or "" for t in reply) == "Sunny, 21 degrees."
    assert chat_of(emu, 1) and '"temp": 21' in prompts(emu)[1].replace('"temp":21', '"temp": 21')
    assert "ZEBRA-DESCRIPTION" not in prompts(emu)[1]


async def test_function_calling_modes(gw, emu):
    client = gemini(gw)
    only_time = types.GenerateContentConfig(
        tools=TOOLS.tools, automatic_function_calling=NO_AFC,
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode="ANY", allowed_function_names=["get_time"])))
    emu.state.replies.append(Reply(text='<tool_call name="get_time">\n{"zone": "UTC", "hours": 2}'
                                        '\n</tool_call>'))
    r = await client.aio.models.generate_content(model="kimi", contents="Time?", config=only_time)
    assert [(c.name, c.args) for c in r.function_calls] == [("get_time", {"zone": "UTC", "hours": 2})]
    assert "get_time" in prompts(emu)[0] and "get_weather" not in prompts(emu)[0]
    assert '"integer"' in prompts(emu)[0], "the OpenAPI schema became JSON Schema"
    none = types.GenerateContentConfig(
        tools=TOOLS.tools, automatic_function_calling=NO_AFC,
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE")))
    r = await client.aio.models.generate_content(model="kimi", contents="Hi", config=none)
    assert not r.function_calls and "ZEBRA" not in prompts(emu)[1]
    assert "Tools are not available for this reply" in prompts(emu)[1]


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("form", ["response_schema", "response_json_schema"])
async def test_structured_output(gw, emu, form):
    emu.state.replies.append(Reply(text='Sure!\n```json\n{"name": "Ada", "age": 36}\n```'))
    schema = Person if form == "response_schema" else Person.model_json_schema()
    cfg = types.GenerateContentConfig(response_mime_type="application/json", **{form: schema})
    r = await gemini(gw).aio.models.generate_content(model="kimi", contents="Who?", config=cfg)
    assert orjson.loads(r.text) == {"name": "Ada", "age": 36}
    if form == "response_schema":
        assert r.parsed == Person(name="Ada", age=36)
    assert '"age"' in prompts(emu)[0] and "JSON" in prompts(emu)[0]


async def test_count_tokens_and_models(gw, emu):
    client = gemini(gw)
    short = await client.aio.models.count_tokens(model="kimi", contents="Hello")
    long = await client.aio.models.count_tokens(model="kimi", contents="Hello world " * 500)
    assert 0 < short.total_tokens < 20 and long.total_tokens > 1000
    names = [m.name async for m in await client.aio.models.list()]
    assert "models/kimi" in names and "models/kimi-thinking" in names
    for version in ("v1beta", "v1"):
        m = await gemini(gw, version=version).aio.models.get(model="kimi-thinking")
        assert m.name == "models/kimi-thinking" and m.input_token_limit > 100000
    assert not emu.state.chat_requests
    # Without a Google key or client header GET /v1/models is still OpenAI's.
    assert "kimi" in [m.id for m in (await gw.client().models.list()).data]


async def test_inline_image_and_system_instruction(gw, emu):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    cfg = types.GenerateContentConfig(system_instruction="Answer in French.")
    await gemini(gw).aio.models.generate_content(model="kimi", config=cfg, contents=[
        types.Part.from_text(text="What is in it?"),
        types.Part.from_bytes(data=png, mime_type="image/png")])
    (record,) = emu.state.files.values()
    assert (record.data, record.content_type) == (png, "image/png")
    assert "Answer in French." in prompts(emu)[0]


async def test_a_large_inline_document_is_uploaded_intact(gw, emu):
    doc = b"%PDF-1.7\n" + bytes(range(256)) * 2048      # 512 KB: past the scanner's threshold
    await gemini(gw).aio.models.generate_content(model="kimi", contents=[
        types.Part.from_text(text="Summarise"),
        types.Part.from_bytes(data=doc, mime_type="application/pdf")])
    (record,) = emu.state.files.values()
    assert (record.data, record.content_type, record.name) == (doc, "application/pdf", "file.pdf")


async def test_api_keys_by_header_and_query(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("u"),)},
                             server={"api_keys": ("sk-gemini-key-1",)})
    r = await gemini(gw, api_key="sk-gemini-key-1").aio.models.generate_content(
        model="kimi", contents="Hello")
    assert r.text == default_text(1, "Hello")
    with pytest.raises(genai_errors.ClientError) as e:
        await gemini(gw, api_key="wrong").aio.models.generate_content(model="kimi", contents="x")
    assert e.value.code == 401 and e.value.status == "UNAUTHENTICATED"
    body = {"contents": [{"parts": [{"text": "Hello"}]}]}
    async with aiohttp.ClientSession() as s:
        url = f"{gw.url}/v1beta/models/kimi:generateContent"
        async with s.post(url + "?key=sk-gemini-key-1", json=body) as r:
            assert r.status == 200
        async with s.post(url, json=body) as r:
            err = (await r.json())["error"]
            assert r.status == 401 and err["status"] == "UNAUTHENTICATED" and err["code"] == 401


async def test_pass_through_kimi_token_as_the_google_key(start_gateway, emu, token):
    gw = await start_gateway()      # no server account: each caller brings a Kimi token
    r = await gemini(gw, api_key=token).aio.models.generate_content(model="kimi", contents="Hi")
    assert r.text == default_text(1, "Hi")
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.url}/v1beta/models/kimi:generateContent",
                          json={"contents": [{"parts": [{"text": "Hi"}]}]}) as r:
            assert r.status == 401 and (await r.json())["error"]["status"] == "UNAUTHENTICATED"


async def test_errors_in_googles_shape(gw, emu):
    client = gemini(gw)
    with pytest.raises(genai_errors.ClientError) as e:
        await client.aio.models.generate_content(model="kimi", contents="x",
                                                 config=types.GenerateContentConfig(candidate_count=2))
    assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT"
    assert "candidateCount" in e.value.message
    async with aiohttp.ClientSession() as s:
        for path, status in (("/v1beta/models/kimi:embedContent", 404),
                             ("/v1beta/models/kimi:generateContent", 400)):
            async with s.post(gw.url + path, data=b"{not json") as r:
                err = (await r.json())["error"]
                assert r.status == status and err["code"] == status and err["message"]
                assert err["status"] == {404: "NOT_FOUND", 400: "INVALID_ARGUMENT"}[status]
    status, raw = await raw_stream(gw, {"contents": [{"role": "model", "parts": [
        {"functionResponse": {"name": "x"}}]}]})
    assert status == 400 and orjson.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
    assert not emu.state.chat_requests


async def test_error_after_content_is_in_band_and_the_sdk_raises(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("error", after=3, code="internal", message="broke")))
    status, raw = await raw_stream(gw, {"contents": [{"parts": [{"text": "Hi"}]}]})
    events = sse_events(raw)
    assert status == 200 and events[-1]["error"]["code"] == 502
    assert events[-1]["error"]["status"] == "UNAVAILABLE" and "broke" in events[-1]["error"]["message"]
    assert "text" in events[0]["candidates"][0]["content"]["parts"][0]
    emu.state.replies.append(Reply(fault=Fault("error", after=3, code="internal", message="broke")))
    with pytest.raises(genai_errors.APIError) as e:
        async for _ in await gemini(gw).aio.models.generate_content_stream(model="kimi",
                                                                         contents="Hi"):
            pass
    assert e.value.code == 502


async def test_moderation_is_safety_and_max_tokens(gw, emu):
    client = gemini(gw)
    emu.state.replies.append(Reply(fault=Fault("moderation", after=2)))
    r = await client.aio.models.generate_content(model="kimi", contents="Hi")
    # (the wire also carries Kimi's notice as finishMessage, which this SDK does not read)
    assert r.candidates[0].finish_reason == types.FinishReason.SAFETY
    emu.state.replies.append(Reply(text="word " * 300))
    r = await client.aio.models.generate_content(
        model="kimi", contents="Hi", config=types.GenerateContentConfig(max_output_tokens=5,
                                                                        stop_sequences=["never"]))
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert r.usage_metadata.candidates_token_count <= 5


async def test_google_search_tool_searches_and_grounds(gw, emu):
    results = [{"title": "T1", "url": "https://one.example"},
               {"title": "T2", "url": "https://two.example"}]
    emu.state.replies.append(Reply(text="First. Second.", search=results, citations="2026"))
    cfg = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    r = await gemini(gw).aio.models.generate_content(model="kimi", contents="News?", config=cfg)
    meta = r.candidates[0].grounding_metadata
    assert [c.web.uri for c in meta.grounding_chunks] == ["https://one.example", "https://two.example"]
    text = r.text.encode()
    marks = [text[s.segment.start_index:s.segment.end_index] for s in meta.grounding_supports]
    assert marks[:2] == [b"[1]", b"[2]"]
    sent = orjson.dumps(emu.state.chat_requests[0]).decode()
    assert "search" in sent.lower()


async def test_stream_without_alt_sse_is_one_json_array(gw, emu):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.url}/v1beta/models/kimi:streamGenerateContent",
                          json={"contents": [{"parts": [{"text": "Hi"}]}]}) as r:
            body = await r.json()
        async with s.get(f"{gw.url}/v1beta/models/no-such-model") as r404:
            err = (await r404.json())["error"]
    assert r.status == 200 and len(body) == 1
    assert body[0]["candidates"][0]["content"]["parts"] == [{"text": default_text(1, "Hi")}]
    assert r404.status == 404 and err["status"] == "NOT_FOUND" and "no-such-model" in err["message"]


async def test_the_sdks_automatic_function_calling(gw, emu):
    """Python functions as tools: the SDK calls them itself and sends the result back (with
    the call's id), continuing the same Kimi chat."""
    seen = []

    def get_weather(city: str) -> dict:
        """Current weather for a city."""
        seen.append(city)
        return {"temp": 21, "city": city}

    emu.state.replies.append(Reply(text=CALL))
    emu.state.replies.append(Reply(text="It is 21 degrees in Paris."))
    r = await gemini(gw).aio.models.generate_content(
        model="kimi", contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]))
    assert seen == ["Paris"] and r.text == "It is 21 degrees in Paris."
    assert chat_of(emu, 1) and '"temp":21' in prompts(emu)[1].replace(" ", "")
    assert "Current weather for a city." in prompts(emu)[0]
    assert "Current weather for a city." not in prompts(emu)[1], "only the result went upstream"


async def test_count_tokens_matches_the_reported_prompt_tokens(gw, emu):
    """countTokens and usageMetadata are one estimate of the whole logical prompt, past
    calls and their results included."""
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris? " * 200)]),
               types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
                   id="call_1", name="get_weather", args={"city": "Paris"}))]),
               types.Content(role="user", parts=[types.Part(
                   function_response=types.FunctionResponse(id="call_1", name="get_weather",
                                                            response={"output": "sunny"}))])]
    client = gemini(gw)
    counted = await client.aio.models.count_tokens(model="kimi", contents=history)
    emu.state.replies.append(Reply(text="Sunny."))
    answer = await client.aio.models.generate_content(model="kimi", contents=history)
    assert counted.total_tokens == answer.usage_metadata.prompt_token_count > 200
