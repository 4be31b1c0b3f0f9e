"""Images and documents end to end: openai SDK -> gateway -> emulator, with remote URLs served
by another loopback server. Each input form, any turn, dedupe, parallel uploads, parse failure
and timeout, refused addresses, size cap, bad base64, redirects."""

import asyncio
import base64
import hashlib

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web

from kimi.upstream.files import UPLOAD_PATH

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n" + "Grüße 中文 report ".encode() * 400
CHAT_PATH = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
LOCAL = {"allow_hosts": ("127.0.0.1",)}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_part(url):
    return {"type": "image_url", "image_url": {"url": url}}


def file_url_part(url):
    return {"type": "file", "file_url": {"url": url}}


def openai_file_part(data: bytes, filename: str, mime="application/pdf"):
    return {"type": "file", "file": {"file_data": f"data:{mime};base64,{b64(data)}", "filename": filename}}


def ask(*parts, text="What is in it?"):
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


class FileServer:
    def __init__(self):
        self.hits: list[str] = []
        self.url = ""
        self.docs = {"report.pdf": (PDF, "application/pdf"), "pic.png": (PNG, "image/png"),
                     "raw.bin": (PNG, "application/octet-stream"), "page.html": (b"<html>", "text/html")}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        name = request.match_info["name"]
        if name == "redirect":
            raise web.HTTPFound(request.query["to"])
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "slow":
            await asyncio.sleep(10)
        if name in ("big", "big-chunked"):
            return await self.big(request, chunked=name == "big-chunked")
        if name not in self.docs:
            raise web.HTTPNotFound()
        data, mime = self.docs[name]
        return web.Response(body=data, content_type=mime)

    async def big(self, request, chunked: bool):
        size = int(request.query.get("mb", "2")) * 1024 * 1024
        resp = web.StreamResponse()
        if chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = size
        await resp.prepare(request)
        for _ in range(size // 65536):
            await resp.write(b"x" * 65536)
        return resp


@pytest.fixture
async def files(aiohttp_server):
    fs = FileServer()
    app = web.Application()
    app.router.add_get("/{name}", fs.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    fs.url = str(server.make_url("")).rstrip("/")
    return fs


@pytest.fixture
async def fgw(start_gateway, token):
    """A gateway that trusts 127.0.0.1 (where the test file server runs)."""
    return await start_gateway(kimi={"tokens": (token,)}, files=LOCAL)


def chat_file_ids(emu, n=-1):
    blocks = emu.state.chat_requests[n]["message"]["blocks"]
    return [b["file"]["id"] for b in blocks if "file" in b]


def request_calls(emu):
    """Calls made for requests (the startup catalogue fetch is not one of them)."""
    return [c for c in emu.state.calls if "ConfigService" not in c.path]


def uploads(emu):
    return [c for c in emu.state.calls if c.path == UPLOAD_PATH]


async def expect_error(gw, messages, status, code=None, param=None, **kw):
    with pytest.raises(openai.APIStatusError) as e:
        await gw.client(**kw).chat.completions.create(model="kimi", messages=messages)
    assert e.value.status_code == status, e.value.message
    if code:
        assert e.value.code == code, e.value.message
    if param:
        assert e.value.param == param
        assert param in e.value.message
    return e.value


def assert_nothing_upstream(emu):
    assert not uploads(emu) and not emu.state.chat_requests and not emu.state.chats


# --- each input form -------------------------------------------------------------------

@pytest.mark.parametrize("part,data,name,mime", [
    (image_part(f"data:image/png;base64,{b64(PNG)}"), PNG, "image.png", "image/png"),
    (file_url_part(f"data:application/pdf;base64,{b64(PDF)}"), PDF, "file.pdf", "application/pdf"),
    (openai_file_part(PDF, "q3-report.pdf"), PDF, "q3-report.pdf", "application/pdf"),
], ids=["image_url-base64", "file_url-base64", "openai-file_data"])
async def test_inline_forms_are_uploaded_and_attached(gw, emu, part, data, name, mime):
    r = await gw.client().chat.completions.create(model="kimi", messages=ask(part))
    (record,) = emu.state.files.values()
    assert (record.data, record.name, record.content_type) == (data, name, mime)
    assert chat_file_ids(emu) == [record.id]
    assert emu.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"] == "What is in it?"
    assert r.choices[0].message.content == emu.state.last_reply.text


@pytest.mark.parametrize("make,doc", [
    (lambda u: image_part(u + "/pic.png"), "pic.png"),
    (lambda u: file_url_part(u + "/report.pdf"), "report.pdf"),
    (lambda u: image_part(u + "/raw.bin"), "raw.bin"),
], ids=["image_url-remote", "file_url-remote", "image-sniffed"])
async def test_remote_urls_are_fetched_and_uploaded(fgw, emu, files, make, doc):
    await fgw.client().chat.completions.create(model="kimi", messages=ask(make(files.url)))
    (record,) = emu.state.files.values()
    data, mime = files.docs[doc]
    assert record.data == data and record.name == doc
    assert record.content_type == ("image/png" if doc == "raw.bin" else mime)
    assert chat_file_ids(emu) == [record.id]


async def test_files_in_an_earlier_turn_are_attached(fgw, emu, files):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Read this."},
                                             openai_file_part(PDF, "a.pdf")]},
                {"role": "assistant", "content": "Done."},
                {"role": "user", "content": [image_part(files.url + "/pic.png")]},
                {"role": "assistant", "content": "Nice picture."},
                {"role": "user", "content": "Summarize both."}]
    await fgw.client().chat.completions.create(model="kimi", messages=messages)
    by_name = {r.name: r for r in emu.state.files.values()}
    assert by_name["a.pdf"].data == PDF and by_name["pic.png"].data == PNG
    assert chat_file_ids(emu) == [by_name["a.pdf"].id, by_name["pic.png"].id]
    prompt = emu.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"]
    assert prompt.endswith("user: Summarize both.")


# --- uploaded once ---------------------------------------------------------------------

async def test_a_document_resent_every_turn_is_uploaded_once(fgw, emu, files):
    history = [{"role": "user", "content": [{"type": "text", "text": "Read."},
                                            openai_file_part(PDF, "a.pdf"),
                                            file_url_part(files.url + "/report.pdf")]}]
    await fgw.client().chat.completions.create(model="kimi", messages=history)
    first = chat_file_ids(emu)
    assert len(first) == 1 and len(uploads(emu)) == 1, "same content twice in one request"
    for turn in range(2):
        history += [{"role": "assistant", "content": f"answer {turn}"},
                    {"role": "user", "content": f"question {turn}"}]
        await fgw.client().chat.completions.create(model="kimi", messages=history)
        assert chat_file_ids(emu) == first
    assert len(uploads(emu)) == 1 and len(emu.state.files) == 1


async def test_dedupe_survives_a_restart_and_is_per_user(start_gateway, emu, token):
    from kimi.emulator import mint_access_token
    messages = ask(openai_file_part(PDF, "a.pdf"))
    gw1 = await start_gateway(kimi={"tokens": (token,)})
    await gw1.client().chat.completions.create(model="kimi", messages=messages)
    gw2 = await start_gateway(kimi={"tokens": (token,)})     # same store file
    await gw2.client().chat.completions.create(model="kimi", messages=messages)
    assert len(uploads(emu)) == 1
    other = mint_access_token("user-2")
    await gw2.client(api_key=other).chat.completions.create(model="kimi", messages=messages)
    assert len(uploads(emu)) == 2, "another Kimi user cannot use user-1's file"
    assert len({r.sub for r in emu.state.files.values()}) == 2


async def test_a_remembered_file_kimi_lost_is_uploaded_again(gw, emu):
    messages = ask(openai_file_part(PDF, "a.pdf"))
    await gw.client().chat.completions.create(model="kimi", messages=messages)
    emu.state.files.clear()         # Kimi expired it
    await gw.client().chat.completions.create(model="kimi", messages=messages)
    assert len(uploads(emu)) == 2
    assert chat_file_ids(emu) == list(emu.state.files)


async def test_several_files_upload_in_parallel(gw, emu):
    emu.state.upload_delay = 0.3
    docs = [openai_file_part(PDF + bytes([i]), f"d{i}.pdf") for i in range(3)]
    await gw.client().chat.completions.create(model="kimi", messages=ask(*docs))
    assert emu.state.max_uploads_active == 3
    assert [emu.state.files[i].name for i in chat_file_ids(emu)] == ["d0.pdf", "d1.pdf", "d2.pdf"]


# --- upstream failures -----------------------------------------------------------------

async def test_parse_failure_names_the_part_and_creates_no_chat(gw, emu):
    emu.state.parse_fail = {"bad.pdf"}
    messages = ask(openai_file_part(PDF, "good.pdf"), openai_file_part(PNG, "bad.pdf"))
    await expect_error(gw, messages, 400, "file_parse_failed", "messages[0].content[2]")
    assert not emu.state.chat_requests and not emu.state.chats
    emu.state.parse_fail = set()
    await gw.client().chat.completions.create(model="kimi", messages=messages)
    assert len(uploads(emu)) == 3, "the good file was remembered, the failed one was not"


async def test_parse_that_never_ends_is_a_504(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, files={"parse_timeout_seconds": 0.6})
    emu.state.parse_never = {"slow.pdf"}
    await expect_error(gw, ask(openai_file_part(PDF, "slow.pdf")), 504, "file_parse_timeout",
                       "messages[0].content[1]")
    assert not emu.state.chat_requests and not emu.state.chats


async def test_upload_failure_names_the_part(gw, emu):
    emu.state.upload_fail_names = {"x.pdf"}
    await expect_error(gw, ask(openai_file_part(PDF, "x.pdf")), 502, param="messages[0].content[1]")
    assert not emu.state.chat_requests and not emu.state.files


# --- validation before anything goes upstream ------------------------------------------

async def test_bad_base64_is_a_400_and_nothing_reaches_kimi(gw, emu):
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,%%%", "filename": "x.pdf"}}
    await expect_error(gw, ask(openai_file_part(PDF, "ok.pdf"), part), 400, "invalid_base64",
                       "messages[0].content[2].file.file_data")
    assert request_calls(emu) == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.pdf", "gopher://x/"])
async def test_unsupported_schemes(gw, emu, url):
    await expect_error(gw, ask(file_url_part(url)), 400, "unsupported_url_scheme")
    assert request_calls(emu) == []


REFUSED = ["http://127.0.0.1:{port}/report.pdf", "http://localhost:{port}/report.pdf",
           "http://[::1]:{port}/report.pdf", "http://[::ffff:127.0.0.1]:{port}/report.pdf",
           "http://2130706433:{port}/report.pdf", "http://10.0.0.1/x", "http://192.168.1.1/x",
           "http://172.16.0.1/x", "http://[fd12::1]/x", "http://169.254.1.1/x", "http://[fe80::1]/x",
           "http://224.0.0.1/x", "http://[ff02::1]/x", "http://240.0.0.1/x", "http://0.0.0.0:{port}/x",
           "http://[::]:{port}/x", "http://169.254.169.254/latest/meta-data/",
           "http://[fd00:ec2::254]/latest/meta-data/", "http://metadata.google.internal/computeMetadata/v1/",
           "http://100.100.100.200/latest/meta-data/", "http://100.64.0.1/x"]


@pytest.mark.parametrize("template", REFUSED)
async def test_refused_addresses(gw, emu, files, template):
    url = template.format(port=files.url.rsplit(":", 1)[1])
    err = await expect_error(gw, ask(openai_file_part(PDF, "ok.pdf"), file_url_part(url)), 400,
                             "file_url_refused", "messages[0].content[2]")
    assert "refusing" in err.message
    assert files.hits == [], "the refused address was contacted"
    assert_nothing_upstream(emu)


@pytest.mark.parametrize("target", ["http://[::1]:{port}/report.pdf", "http://169.254.169.254/latest/",
                                    "http://127.0.0.2:{port}/report.pdf", "file:///etc/passwd"])
async def test_redirect_to_a_refused_address(start_gateway, emu, files, token, target):
    gw = await start_gateway(kimi={"tokens": (token,)}, files={"allow_hosts": ("127.0.0.1/32",)})
    to = target.format(port=files.url.rsplit(":", 1)[1])
    url = f"{files.url}/redirect?to={to}"
    await expect_error(gw, ask(file_url_part(url)), 400, param="messages[0].content[1]")
    assert len(files.hits) == 1 and files.hits[0].startswith("/redirect?"), files.hits
    assert_nothing_upstream(emu)


async def test_redirects_are_followed_and_bounded(fgw, emu, files):
    url = f"{files.url}/redirect?to={files.url}/redirect?to=/report.pdf"
    await fgw.client().chat.completions.create(model="kimi", messages=ask(file_url_part(url)))
    assert [r.data for r in emu.state.files.values()] == [PDF]
    await expect_error(fgw, ask(file_url_part(files.url + "/loop")), 400, "file_too_many_redirects")


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_oversized_download_is_cut_off(start_gateway, emu, files, token, path):
    gw = await start_gateway(kimi={"tokens": (token,)}, files={**LOCAL, "max_mb": 1})
    await expect_error(gw, ask(file_url_part(files.url + path)), 413, "file_too_large",
                       "messages[0].content[1]")
    assert_nothing_upstream(emu)


async def test_oversized_inline_file(start_gateway, emu, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, files={"max_mb": 1})
    big = b"x" * (1024 * 1024 + 1)
    await expect_error(gw, ask(openai_file_part(big, "big.txt", "text/plain")), 413,
                       "file_too_large", "messages[0].content[1]")
    assert request_calls(emu) == []


async def test_unreachable_and_missing_urls(fgw, emu, files):
    await expect_error(fgw, ask(file_url_part(files.url + "/nope.pdf")), 400, "file_unreachable",
                       "messages[0].content[1]")
    await expect_error(fgw, ask(file_url_part("http://127.0.0.1:9/x.pdf")), 400, "file_unreachable")
    assert_nothing_upstream(emu)


async def test_slow_download_times_out(start_gateway, emu, files, token):
    gw = await start_gateway(kimi={"tokens": (token,)},
                             files={**LOCAL, "download_timeout_seconds": 0.5})
    await expect_error(gw, ask(file_url_part(files.url + "/slow")), 400, "file_download_timeout",
                       "messages[0].content[1]")
    assert_nothing_upstream(emu)


async def test_image_url_that_is_not_an_image(fgw, emu, files):
    await expect_error(fgw, ask(image_part(files.url + "/page.html")), 400, "unsupported_file_type")
    assert_nothing_upstream(emu)


async def test_stream_request_with_a_file(gw, emu):
    stream = await gw.client().chat.completions.create(
        model="kimi", stream=True, messages=ask(openai_file_part(PDF, "a.pdf")))
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == emu.state.last_reply.text
    (record,) = emu.state.files.values()
    assert chat_file_ids(emu) == [record.id] and record.checksum == hashlib.sha256(PDF).hexdigest()


async def test_large_documents_arrive_intact_both_ways(fgw, emu, files):
    blob = bytes(range(256)) * 4099      # ~1 MB, several upload slices, odd length
    messages = ask(openai_file_part(blob, "blob.bin", "application/octet-stream"),
                   file_url_part(files.url + "/big?mb=3"))
    await fgw.client().chat.completions.create(model="kimi", messages=messages)
    records = [emu.state.files[i] for i in chat_file_ids(emu)]
    assert records[0].data == blob
    assert records[1].data == b"x" * (3 * 1024 * 1024) and records[1].name == "big"


async def test_a_body_over_8_mb_follows_the_same_json_rules(gw, emu):
    doc = bytes(range(256)) * (7 * 1024 * 1024 // 256)
    good = orjson.dumps({"model": "kimi", "messages": ask(openai_file_part(doc, "big.pdf"))})
    assert len(good) > 8 * 1024 * 1024
    bad_bodies = [good[:-1], good[:-1] + b',"x":NaN}', good.replace(b'"big.pdf"', b'"big\xff.pdf"')]
    async with aiohttp.ClientSession() as s:
        for body in bad_bodies:
            async with s.post(gw.url + "/v1/chat/completions", data=body,
                              headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400
                assert (await r.json())["error"]["code"] == "invalid_json"
    assert request_calls(emu) == []
    await gw.client().chat.completions.create(model="kimi", messages=ask(openai_file_part(doc, "big.pdf")))
    (record,) = emu.state.files.values()
    assert record.data == doc



async def test_files_are_uploaded_on_the_account_that_runs_the_chat(start_gateway, emu):
    from kimi.emulator import mint_access_token
    gw = await start_gateway(kimi={"tokens": (mint_access_token("user-1"), mint_access_token("user-2"))})
    messages = ask(openai_file_part(PDF, "a.pdf"))
    for _ in range(4):
        await gw.client().chat.completions.create(model="kimi", messages=messages)
        chat = emu.state.chats[emu.state.last_reply.chat_id]
        (file_id,) = chat_file_ids(emu)
        assert emu.state.files[file_id].sub == chat.sub
    assert sorted(r.sub for r in emu.state.files.values()) == ["user-1", "user-2"]
    assert len(uploads(emu)) == 2


async def test_after_a_failed_upload_a_retry_uploads_only_what_is_missing(gw, emu):
    emu.state.upload_fail_names = {"x.pdf"}
    emu.state.upload_delay = 0.1
    messages = ask(openai_file_part(PDF, "good.pdf"), openai_file_part(PNG, "x.pdf"))
    await expect_error(gw, messages, 502, param="messages[0].content[2]")
    assert not emu.state.chat_requests
    emu.state.upload_fail_names = set()
    await gw.client().chat.completions.create(model="kimi", messages=messages)
    assert len(uploads(emu)) == 3, "good.pdf was uploaded once, x.pdf twice"
    assert [emu.state.files[i].name for i in chat_file_ids(emu)] == ["good.pdf", "x.pdf"]


async def test_unicode_filenames_reach_kimi_as_they_are(gw, emu):
    await gw.client().chat.completions.create(
        model="kimi", messages=ask(openai_file_part(PDF, "季度 报告 \"final\".pdf")))
    (record,) = emu.state.files.values()
    assert record.name == "季度 报告 'final'.pdf"


async def test_a_slow_download_does_not_hold_the_account(start_gateway, emu, files, token):
    # one account, one stream at a time: a download still in progress must not block others
    gw = await start_gateway(kimi={"tokens": (token,)},
                             files={**LOCAL, "download_timeout_seconds": 1.5})
    slow = asyncio.ensure_future(expect_error(gw, ask(file_url_part(files.url + "/slow")), 400,
                                              "file_download_timeout", "messages[0].content[1]"))
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await gw.client().chat.completions.create(model="kimi", messages=[
        {"role": "user", "content": "meanwhile"}])
    assert r.choices[0].message.content and loop.time() - t0 < 1.0
    await slow
