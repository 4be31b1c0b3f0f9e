"""Images and documents in Anthropic content blocks take the upload path: base64 (a large one
decoded while the body streams in, never through the whole-text decoder), URLs, text
documents, and files inside tool results (Claude Code's Read of a PDF or an image)."""

from __future__ import annotations

import base64
import hashlib
import os

import aiohttp
import pytest

from kimi.api.anthropic import content
from kimi.emulator import Reply
from test_files_e2e import LOCAL, chat_file_ids, files  # noqa: F401 (files: a fixture)
from tests.anthropic_sse import blocks, check_stream

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
PDF = b"%PDF-1.7\n" + os.urandom(1536 * 1024)     # past the 64 KiB the body scanner takes


def source(data: bytes, mime: str) -> dict:
    return {"type": "base64", "media_type": mime, "data": base64.b64encode(data).decode()}


async def post(gw, messages, stream=False) -> tuple[int, str]:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
            "messages": messages}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/messages", json=body) as r:
            return r.status, (await r.read()).decode()


async def test_a_base64_image_is_uploaded_and_attached(gw, emu):
    emu.state.replies.append(Reply(text="A picture."))
    status, raw = await post(gw, [{"role": "user", "content": [
        {"type": "image", "source": source(PNG, "image/png")},
        {"type": "text", "text": "What is this?"}]}], stream=True)
    assert status == 200
    assert blocks(check_stream(raw))[0]["text"] == "A picture."
    (record,) = emu.state.files.values()
    assert (record.data, record.content_type) == (PNG, "image/png")
    assert chat_file_ids(emu) == [record.id]


async def test_a_large_pdf_in_a_tool_result_is_decoded_while_the_body_streams(gw, emu,
                                                                              monkeypatch):
    def whole_text_decoder(*args):
        raise AssertionError("a large base64 value went through the whole-text decoder")
    monkeypatch.setattr(content, "decode_base64", whole_text_decoder)
    emu.state.replies.append(Reply(text="The PDF says hello."))
    messages = [
        {"role": "user", "content": "Read spec.pdf"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_pdf", "name": "Read",
                                           "input": {"file_path": "spec.pdf"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_pdf",
                                      "content": [{"type": "document",
                                                   "source": source(PDF, "application/pdf")}]}]}]
    status, raw = await post(gw, messages)
    assert status == 200, raw
    (record,) = emu.state.files.values()
    assert record.checksum == hashlib.sha256(PDF).hexdigest()
    assert record.content_type == "application/pdf"
    assert chat_file_ids(emu) == [record.id]


async def test_text_documents_and_urls(start_gateway, emu, token, files):
    gw = await start_gateway(kimi={"tokens": (token,)}, files=LOCAL)
    files.docs["mine.png"] = (PNG, "image/png")
    emu.state.replies.append(Reply(text="ok"))
    status, raw = await post(gw, [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "plain notes ZEBRA"}, "title": "notes"},
        {"type": "image", "source": {"type": "url", "url": files.url + "/mine.png"}},
        {"type": "document", "source": {"type": "content",
                                        "content": [{"type": "text", "text": "inline ZEBRA-2"}]}},
        {"type": "text", "text": "Summarise"}]}])
    assert status == 200, raw
    stored = sorted((r.content_type, r.data) for r in emu.state.files.values())
    assert stored == [("image/png", PNG), ("text/plain", b"plain notes ZEBRA")]
    prompt = emu.state.chat_requests[-1]["message"]["blocks"]
    assert any("inline ZEBRA-2" in ((b.get("text") or {}).get("content") or "") for b in prompt)


@pytest.mark.parametrize("block,field", [
    ({"type": "image", "source": {"type": "file", "file_id": "file_1"}},
     "messages.0.content.0.source.type"),
    ({"type": "image", "source": {"type": "base64", "media_type": "application/pdf",
                                  "data": "AAAA"}}, "messages.0.content.0.source.media_type"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                  "data": "!!not base64!!"}}, "messages.0.content.0.source.data"),
    ({"type": "image", "source": {"type": "url", "url": "ftp://x/y.png"}},
     "messages.0.content.0.source.url"),
])
async def test_bad_sources_are_400_naming_the_field(gw, emu, block, field):
    status, raw = await post(gw, [{"role": "user", "content": [block]}])
    assert status == 400 and '"invalid_request_error"' in raw and field in raw
    assert emu.state.chat_requests == []
