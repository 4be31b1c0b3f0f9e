"""Large inline documents end to end: decoded while the body is read (web/inline.py), then
validated, uploaded and answered exactly as before, with their temporary files closed on
every path."""

import asyncio
import base64
import hashlib
import os

import aiohttp
import orjson
import pytest

from kimi.emulator import Fault, Reply, mint_access_token
from test_files_e2e import ask, chat_file_ids, expect_error, request_calls, uploads

# Over the 64 KiB that makes a data URL worth taking out, and over the 1 MiB kept in memory.
DOC = os.urandom(1536 * 1024 + 2)
PNG = b"\x89PNG\r\n\x1a\n" + DOC
B64 = base64.b64encode(DOC).decode()


def forms(data: bytes, mime: str):
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return {"image_url": {"type": "image_url", "image_url": {"url": url}},
            "file_url": {"type": "file", "file_url": {"url": url}},
            "file_data": {"type": "file", "file": {"file_data": url, "filename": "big.pdf"}},
            "raw": {"type": "file", "file": {"file_data": url.split(",", 1)[1],
                                             "filename": "big.pdf"}}}


async def post(gw, messages, escape_slashes=False) -> tuple[int, dict]:
    body = orjson.dumps({"model": "kimi", "messages": messages})
    if escape_slashes:      # as PHP's json_encode and others write JSON
        body = body.replace(b"/", b"\\/")
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=body,
                          headers={"Content-Type": "application/json"}) as r:
            return r.status, await r.json()


@pytest.fixture
async def no_temp_files_left():
    """Checks that a test leaves no more unlinked files open than it found (the gateway
    runs in this process; pytest holds a few of its own). aiohttp closes an uploaded file
    in the background after the request: the check waits for that close (bounded), it does
    not assume it has happened."""
    before = temp_files()
    yield
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while temp_files() > before and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert temp_files() <= before


def temp_files() -> int:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return sum(link.endswith("(deleted)") for link in links)


@pytest.mark.parametrize("escape_slashes", [False, True], ids=["plain", "slashes-escaped"])
@pytest.mark.parametrize("form,data,name,mime", [
    ("image_url", PNG, "image.png", "image/png"),
    ("file_url", DOC, "file.pdf", "application/pdf"),
    ("file_data", DOC, "big.pdf", "application/pdf"),
    ("raw", DOC, "big.pdf", "application/pdf"),
])
async def test_large_inline_forms_arrive_intact(gw, emu, form, data, name, mime, escape_slashes,
                                              no_temp_files_left):
    part = forms(data, mime)[form]
    status, answer = await post(gw, ask(part), escape_slashes)
    assert status == 200, answer
    (record,) = emu.state.files.values()
    assert (record.data, record.name, record.content_type) == (data, name, mime)
    assert record.checksum == hashlib.sha256(data).hexdigest()
    assert chat_file_ids(emu) == [record.id]
    assert answer["choices"][0]["message"]["content"] == emu.state.last_reply.text


async def test_the_sdk_sends_a_large_document_once_per_account_across_turns(gw, emu):
    part = forms(DOC, "application/pdf")["file_data"]
    messages = ask(part)
    first = await gw.client().chat.completions.create(model="kimi", messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": [{"type": "text", "text": "And?"}, part]}]
    await gw.client().chat.completions.create(model="kimi", messages=messages)
    assert len(uploads(emu)) == 1
    assert [r.data for r in emu.state.files.values()] == [DOC]


@pytest.mark.parametrize("part,status,code,param", [
    ({"type": "file", "file": {"file_data": f"data:application/pdf;base64,{B64[:-8]}*{B64[-7:]}"}},
     400, "invalid_base64", "messages[0].content[1].file.file_data"),
    ({"type": "image_url", "image_url": {"url": f"data:application/pdf;base64,{B64}"}},
     400, "unsupported_file_type", "messages[0].content[1].image_url.url"),
    ({"type": "file", "file_url": {"url": f"data:pdf;base64,{B64}"}},
     400, "invalid_data_url", "messages[0].content[1].file_url.url"),
], ids=["bad base64 at the end", "image that is not one", "no media type"])
async def test_large_inline_errors_are_the_same(gw, emu, part, status, code, param, no_temp_files_left):
    await expect_error(gw, ask(part), status, code, param)
    assert request_calls(emu) == []


async def test_a_large_inline_file_over_the_cap_is_a_413(start_gateway, emu, token, no_temp_files_left):
    gw = await start_gateway(kimi={"tokens": (token,)}, files={"max_mb": 1})
    await expect_error(gw, ask(forms(DOC, "application/pdf")["file_data"]), 413,
                       "file_too_large", "messages[0].content[1]")
    assert request_calls(emu) == []


async def test_the_body_cap_holds_for_a_streamed_body_without_length(start_gateway, token, no_temp_files_left):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"max_body_mb": 1})
    body = orjson.dumps({"model": "kimi", "messages": ask(forms(DOC, "application/pdf")["file_data"])})

    async def chunks():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", data=chunks(),
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 413
            assert (await r.json())["error"]["message"]


async def test_wrapped_base64_is_still_forgiven(gw, emu):
    wrapped = "\n".join(B64[i:i + 76] for i in range(0, len(B64), 76))
    await gw.client().chat.completions.create(model="kimi", messages=ask(
        {"type": "file", "file_url": {"url": f"data:application/pdf;base64,{wrapped}"}}))
    assert [r.data for r in emu.state.files.values()] == [DOC]


async def test_a_data_url_sent_as_text_reaches_kimi_as_text(gw, emu):
    text = "data:text/plain;base64," + base64.b64encode(b"plain words " * 9000).decode()
    await gw.client().chat.completions.create(model="kimi", messages=[
        {"role": "user", "content": [{"type": "text", "text": text}]}])
    assert emu.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"] == text
    assert not uploads(emu)


async def test_a_string_that_looks_like_a_marker_is_ordinary_text(gw, emu):
    fake = "kimi-inline-" + "0" * 32 + "-0"
    await expect_error(gw, ask({"type": "file", "file": {"file_data": fake, "filename": "a.pdf"}},
                               forms(DOC, "application/pdf")["file_data"]),
                       400, "invalid_base64", "messages[0].content[1].file.file_data")
    await gw.client().chat.completions.create(model="kimi", messages=ask(
        forms(DOC, "application/pdf")["file_data"], text=fake))
    assert emu.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"] == fake


async def test_temporary_files_are_closed_on_every_path(start_gateway, emu, token, no_temp_files_left):
    part = forms(DOC, "application/pdf")["file_data"]
    gw = await start_gateway(kimi={"tokens": (token,)})
    bad_later = ask(part) + [{"role": "nobody", "content": "x"}]
    await expect_error(gw, bad_later, 400, param="messages[1].role")
    emu.state.parse_fail = {"big.pdf"}
    await expect_error(gw, ask(part), 400, "file_parse_failed")
    emu.state.parse_fail = set()
    emu.state.upload_fail_names = {"big.pdf"}
    await expect_error(gw, ask(part), 502)
    anonymous = await start_gateway()
    await expect_error(anonymous, ask(part), 401)


async def test_failover_uploads_the_same_document_again(start_gateway, emu, no_temp_files_left):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-a"), mint_access_token("user-b"))})
    emu.state.replies.append(Reply(fault=Fault("http", status=500, code="internal")))
    await gw.client().chat.completions.create(model="kimi", messages=ask(
        forms(DOC, "application/pdf")["file_data"]))
    assert sorted(r.sub for r in emu.state.files.values()) == ["user-a", "user-b"]
    assert [r.data for r in emu.state.files.values()] == [DOC, DOC]
