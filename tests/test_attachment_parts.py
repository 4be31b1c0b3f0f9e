"""OpenAI image/file content parts -> canonical attachments, and every bad part -> a 400
that names it (pure decoding, no network)."""

import base64

import pytest

from kimi.api.openai.decode import decode_chat_request
from kimi.errors import InvalidRequest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00fake-png" * 10
PDF = b"%PDF-1.7\n" + "Grüße 中文".encode() * 50
B64_PNG, B64_PDF = base64.b64encode(PNG).decode(), base64.b64encode(PDF).decode()


def attachments_of(*parts, role="user"):
    req = decode_chat_request({"model": "kimi", "messages": [
        {"role": "system", "content": "s"},
        {"role": role, "content": [{"type": "text", "text": "look"}, *parts]}]})
    assert req.messages[1].text == "look"
    return req.messages[1].attachments


OK = [
    ("image data url", {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64_PNG}"}},
     dict(kind="image", data=PNG, mime="image/png", filename="image.png", url=None)),
    ("image url string form", {"type": "image_url", "image_url": "https://example.com/a.png"},
     dict(kind="image", url="https://example.com/a.png", data=None)),
    ("image http url", {"type": "image_url", "image_url": {"url": "http://example.com/a.png", "detail": "high"}},
     dict(kind="image", url="http://example.com/a.png")),
    ("seed file_url data", {"type": "file", "file_url": {"url": f"data:application/pdf;base64,{B64_PDF}"}},
     dict(kind="file", data=PDF, mime="application/pdf", filename="file.pdf")),
    ("seed file_url remote", {"type": "file", "file_url": {"url": "https://example.com/r.pdf?x=1"}},
     dict(kind="file", url="https://example.com/r.pdf?x=1")),
    ("openai file data url", {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{B64_PDF}",
                                                       "filename": "report.pdf"}},
     dict(kind="file", data=PDF, mime="application/pdf", filename="report.pdf")),
    ("openai file raw base64", {"type": "file", "file": {"file_data": B64_PDF, "filename": "r.pdf"}},
     dict(kind="file", data=PDF, mime="application/pdf", filename="r.pdf")),
    ("raw base64, unknown name", {"type": "file", "file": {"file_data": B64_PDF, "filename": "notes"}},
     dict(data=PDF, mime="application/octet-stream", filename="notes")),
    ("wrapped base64 lines", {"type": "file", "file": {"file_data": "\n".join(
        B64_PDF[i:i + 76] for i in range(0, len(B64_PDF), 76)), "filename": "w.pdf"}},
     dict(data=PDF)),
    ("missing padding", {"type": "file", "file": {"file_data": base64.b64encode(b"ab").decode().rstrip("="),
                                                  "filename": "t.txt"}},
     dict(data=b"ab", mime="text/plain")),
    ("plain data url", {"type": "file", "file_url": {"url": "data:text/plain,hello%20world"}},
     dict(data=b"hello world", mime="text/plain", filename="file.txt")),
]


@pytest.mark.parametrize("name,part,expected", OK, ids=[c[0] for c in OK])
def test_parts_become_attachments(name, part, expected):
    (a,) = attachments_of(part)
    assert a.where == "messages[1].content[1]"
    for key, value in expected.items():
        assert getattr(a, key) == value, key


def test_attachments_in_any_message_keep_their_place():
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64_PNG}"}}
    req = decode_chat_request({"messages": [
        {"role": "user", "content": [part, {"type": "text", "text": "first"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "now"}, part, part]}]})
    wheres = [a.where for m in req.messages for a in m.attachments]
    assert wheres == ["messages[0].content[0]", "messages[2].content[1]", "messages[2].content[2]"]
    assert req.messages[0].text == "first" and req.messages[1].attachments == ()


BAD = [
    ("bad base64", {"type": "file", "file": {"file_data": "data:application/pdf;base64,@@@not-base64@@@",
                                             "filename": "x.pdf"}},
     "invalid_base64", "messages[1].content[1].file.file_data"),
    ("bad raw base64", {"type": "file", "file": {"file_data": "abc$", "filename": "x.pdf"}},
     "invalid_base64", "messages[1].content[1].file.file_data"),
    ("bad image base64", {"type": "image_url", "image_url": {"url": "data:image/png;base64,a"}},
     "invalid_base64", "messages[1].content[1].image_url.url"),
    ("data url without comma", {"type": "image_url", "image_url": {"url": "data:image/png;base64"}},
     "invalid_data_url", "messages[1].content[1].image_url.url"),
    ("data url bad media type", {"type": "file", "file_url": {"url": "data:pdf;base64,AAAA"}},
     "invalid_data_url", "messages[1].content[1].file_url.url"),
    ("image that is not an image", {"type": "image_url", "image_url": {"url": f"data:application/pdf;base64,{B64_PDF}"}},
     "unsupported_file_type", "messages[1].content[1].image_url.url"),
    ("file scheme", {"type": "file", "file_url": {"url": "file:///etc/passwd"}},
     "unsupported_url_scheme", "messages[1].content[1].file_url.url"),
    ("ftp scheme", {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}},
     "unsupported_url_scheme", "messages[1].content[1].image_url.url"),
    ("no scheme", {"type": "image_url", "image_url": {"url": "example.com/a.png"}},
     "unsupported_url_scheme", "messages[1].content[1].image_url.url"),
    ("no host", {"type": "image_url", "image_url": {"url": "https:///a.png"}},
     "invalid_url", "messages[1].content[1].image_url.url"),
    ("bad port", {"type": "image_url", "image_url": {"url": "https://example.com:99999/a.png"}},
     "invalid_url", "messages[1].content[1].image_url.url"),
    ("empty content", {"type": "file", "file_url": {"url": "data:text/plain;base64,"}},
     "empty_file", "messages[1].content[1]"),
    ("missing url", {"type": "image_url", "image_url": {}}, None, "messages[1].content[1].image_url.url"),
    ("file without data", {"type": "file", "file": {"filename": "x.pdf"}},
     None, "messages[1].content[1].file.file_data"),
    ("openai file id", {"type": "file", "file": {"file_id": "file-abc"}},
     None, "messages[1].content[1].file.file_data"),
    ("file part without file", {"type": "file"}, None, "messages[1].content[1]"),
    ("empty filename", {"type": "file", "file": {"file_data": B64_PDF, "filename": " "}},
     None, "messages[1].content[1].file.filename"),
    ("audio is not supported", {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
     None, "messages[1].content[1].type"),
]


@pytest.mark.parametrize("name,part,code,param", BAD, ids=[c[0] for c in BAD])
def test_bad_parts_are_400_naming_the_part(name, part, code, param):
    with pytest.raises(InvalidRequest) as e:
        attachments_of(part)
    assert e.value.status == 400
    assert e.value.param == param
    assert e.value.message.startswith(param.split(".type")[0])
    if code:
        assert e.value.code == code


def test_a_document_larger_than_one_decoding_slice():
    doc = bytes(range(256)) * (5 * 1024 * 1024 // 256 + 7) + b"!"   # > 4 Mi characters, padded
    (a,) = attachments_of({"type": "file", "file_url": {"url": f"data:application/pdf;base64,{b64(doc)}"}})
    assert a.data == doc
    text = base64.b64encode(doc).decode()
    (a,) = attachments_of({"type": "file", "file": {"file_data": text.rstrip("=") or text, "filename": "a.pdf"}})
    assert a.data == doc
    broken = text[:5_000_000] + "*" + text[5_000_001:]
    with pytest.raises(InvalidRequest, match="not valid base64"):
        attachments_of({"type": "file", "file": {"file_data": broken, "filename": "a.pdf"}})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("name,safe", [
    ("中文 报告.pdf", "中文 报告.pdf"), ('a"b\r\n.pdf', "a'b.pdf"), ("../../etc/passwd", "passwd"),
    ("C:\\x\\y.doc", "y.doc"), ("", "file"), ("\x00\x7f", "file"),
    ("a" * 300 + ".pdf", "a" * 190 + ".pdf"), ("b" * 300, "b" * 200)])
def test_upload_filenames_are_made_safe(name, safe):
    from kimi.upstream.files import safe_filename
    assert safe_filename(name) == safe
