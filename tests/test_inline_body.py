"""The body scanner (web/inline.py): large base64 data URLs are decoded while the body streams
in and everything else is left as it was, whatever the chunk boundaries. Each case is fed
split at every byte (and byte by byte); the parsed result, with the markers put back, must be
what orjson makes of the original body, and exactly the listed values must have been taken."""

import base64
import os

import orjson
import pytest

from kimi.api.openai.attachments import claim_inline_parts
from kimi.api.openai.decode import decode_chat_request
from kimi.errors import InvalidRequest, PayloadTooLarge
from kimi.web import inline
from kimi.web.inline import BodyScanner, InlinePayload

DOC = bytes(range(256))             # "==" padding
DOC2, DOC3 = DOC[:255], DOC + b"!"  # no padding, one "="
B64, B64_2, B64_3 = (base64.b64encode(d).decode() for d in (DOC, DOC2, DOC3))
PDF = "data:application/pdf;base64,"


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    """Small thresholds so that short bodies exercise taking and spilling to a file."""
    monkeypatch.setattr(inline, "INLINE_MIN", 64)
    monkeypatch.setattr(inline, "SPILL", 100)


def dumps(value) -> bytes:
    return orjson.dumps(value)


def escaped(value) -> bytes:
    """JSON as PHP and others write it: every / as \\/."""
    return orjson.dumps(value).replace(b"/", b"\\/")


CASES = [
    ("openai file_data", dumps({"file": {"file_data": PDF + B64, "filename": "a.pdf"}}), [DOC]),
    ("no padding", dumps({"url": PDF + B64_2}), [DOC2]),
    ("one padding character", dumps({"url": PDF + B64_3}), [DOC3]),
    ("slashes escaped as \\/", escaped({"image_url": {"url": "data:image/png;base64," + B64}}), [DOC]),
    ("two documents and text", dumps({"a": [{"u": PDF + B64}, {"t": "x/y\"z"}, {"u": PDF + B64_3}]}),
     [DOC, DOC3]),
    ("pretty-printed", b'{\n  "a" :\n\t{ "b"\r\n:  "' + (PDF + B64).encode() + b'" }\n}', [DOC]),
    ("header parameters", dumps({"u": "data:application/pdf;name=a b.pdf;base64," + B64}), [DOC]),
    ("after many plain strings", dumps({"m": ["a", 'b"c\\', {"t": "x", "data:": "y"}] * 5,
                                        "u": PDF + B64}), [DOC]),
    ("file_data as a value, then raw base64", dumps({"k": "file_data", "v": B64}), []),
    ("file_data in an array, then raw base64", dumps({"k": ["file_data", B64]}), []),
    ("short data url stays text", dumps({"u": PDF + "QUJD"}), []),
    ("array element stays text", dumps({"u": [PDF + B64]}), []),
    ("object key stays text", dumps({PDF + B64: 1}), []),
    ("not base64 stays text", dumps({"u": "data:text/plain," + "x" * 300}), []),
    ("upper-case scheme stays text", dumps({"u": "DATA:application/pdf;base64," + B64}), []),
    ("raw base64 file_data", dumps({"file_data": B64}), [DOC]),
    ("raw base64 file_data, spaced key", b'{"file_data" \n:\t"' + B64.encode() + b'"}', [DOC]),
    ("raw base64 in another member stays text", dumps({"data": B64}), []),
    ("file_data that is not base64 stays text", dumps({"file_data": "-" * 300}), []),
    ("file_data data URL", dumps({"file_data": "data:a/b;base64," + B64}), [DOC]),
    ("file_data percent data URL stays text", dumps({"file_data": "data:a/b," + B64}), []),
    ("wrapped lines", dumps({"u": PDF + B64[:76] + "\n" + B64[76:]}), []),
    ("spaces", dumps({"u": PDF + B64[:76] + " " + B64[76:]}), []),
    ("missing padding", dumps({"u": PDF + B64.rstrip("=")}), []),
    ("data after padding", dumps({"u": PDF + B64 + "QUJD"}), []),
    ("bits after the padding", dumps({"u": PDF + B64[:-3] + "B=="}), []),
    ("bad character", dumps({"u": PDF + B64[:200] + "*" + B64[200:]}), []),
    ("non-ASCII character", dumps({"u": PDF + B64[:200] + "é" + B64[200:]}), []),
    ("escaped quote", dumps({"u": PDF + B64[:200] + '"' + B64[200:]}), []),
    ("escaped backslash", dumps({"u": PDF + B64[:200] + "\\" + B64[200:]}), []),
    ("unicode escape", dumps({"u": PDF + B64}).replace(b"AAE", b"\\u0041AE"), []),
    ("escape in the header", dumps({"u": PDF + B64}).replace(b"pdf", b"\\u0070df"), []),
    ("look-alike marker", dumps({"u": "kimi-inline-" + "0" * 32 + "-0", "v": PDF + B64}), [DOC]),
    ("truncated inside a document", dumps({"u": PDF + B64})[:-40], []),
    ("control character inside", dumps({"u": PDF + B64}).replace(b"AAE", b"A\x01E"), []),
    ("body ends after a backslash", dumps({"u": PDF + B64})[:-30] + b"\\", []),
]


# A dialect names its own raw-base64 members (Anthropic: "data"); "file_data" is then plain.
ANTHROPIC_CASES = [
    ("anthropic base64 source", dumps({"source": {"type": "base64", "media_type": "image/png",
                                                  "data": B64}}), [DOC]),
    ("anthropic data, spaced key", b'{"data"\n :  "' + B64_3.encode() + b'"}', [DOC3]),
    ("data as a value stays text", dumps({"k": "data", "v": B64}), []),
    ("data that is text stays text", dumps({"type": "text", "data": "plain notes " * 30}), []),
    ("a longer key stays text", dumps({"database": B64}), []),
    ("file_data is not this dialect's", dumps({"file_data": B64}), []),
    ("data URLs still taken", dumps({"url": PDF + B64}), [DOC]),
]


@pytest.mark.parametrize("name,body,taken", ANTHROPIC_CASES, ids=[c[0] for c in ANTHROPIC_CASES])
def test_raw_keys_are_the_reading_dialects(name, body, taken):
    want = parsed(body)
    for i in range(len(body) + 1):
        scanner = scan([body[:i], body[i:]], raw_keys=(b"data",))
        try:
            assert [content(p) for p in scanner.payloads.values()] == taken, i
            got = parsed(scanner.out)
            scanner.restore(got)
            assert got == want, i
        finally:
            scanner.close()


def scan(chunks, raw_keys=inline.RAW_KEYS) -> BodyScanner:
    scanner = BodyScanner(max_bytes=10**8, raw_keys=raw_keys)
    for c in chunks:
        scanner.feed(c)
    scanner.finish()
    return scanner


def parsed(data: bytes):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        return ("invalid", e.args[0].split(":")[0])


def content(p: InlinePayload) -> bytes:
    if p.data is not None:
        return p.data
    with p.reopen() as f:
        return f.read()


@pytest.mark.parametrize("name,body,taken", CASES, ids=[c[0] for c in CASES])
def test_every_split_point_gives_the_same_body(name, body, taken):
    want = parsed(body)
    splits = [[body[:i], body[i:]] for i in range(len(body) + 1)]
    splits.append([body[i:i + 1] for i in range(len(body))])
    for chunks in splits:
        scanner = scan(chunks)
        got = parsed(scanner.out)
        try:
            assert [content(p) for p in scanner.payloads.values()] == taken, chunks[0]
            if isinstance(got, dict):
                assert len(scanner.out) < len(body) or not taken
                scanner.restore(got)
            assert got == want, chunks[0]
        finally:
            scanner.close()


def test_payloads_know_their_size_hash_and_header():
    scanner = scan([escaped({"u": "data:image/png;base64," + B64})])
    (payload,) = scanner.payloads.values()
    assert payload.header == "data:image/png;base64,"
    assert payload.size == len(payload) == len(DOC)
    import hashlib
    assert payload.sha256 == hashlib.sha256(DOC).hexdigest()
    assert payload.text() == "data:image/png;base64," + B64
    scanner.close()


def test_a_payload_over_the_cap_keeps_nothing_but_its_size():
    scanner = BodyScanner(max_bytes=100)
    scanner.feed(dumps({"u": PDF + B64}))
    scanner.finish()
    (payload,) = scanner.payloads.values()
    assert payload.too_large and payload.size == len(DOC)
    assert payload.data is None and payload.reopen() is None
    with pytest.raises(PayloadTooLarge):
        scanner.restore(orjson.loads(scanner.out))     # its text cannot be given back


def test_a_broken_value_past_the_cap_still_ends_where_it_ends():
    """Broken after the cap was passed, its text is gone: the value is dropped to its end
    (and refused later as too large). Broken before, it is given back."""
    value = PDF + B64_2 + B64_2 + " \" x"
    body = dumps({"u": value, "after": "ok"})
    dropped = 0
    for i in range(len(body) + 1):
        scanner = BodyScanner(max_bytes=300)
        scanner.feed(body[:i])
        scanner.feed(body[i:])
        scanner.finish()
        result = orjson.loads(scanner.out)
        assert result["after"] == "ok"
        if scanner.payloads:
            assert scanner.payloads[result["u"]].too_large
            dropped += 1
        else:
            assert result["u"] == value
    assert dropped > 0


def test_closing_releases_the_temporary_files():
    def open_files():
        return len(os.listdir("/proc/self/fd"))
    before = open_files()
    scanner = scan([dumps({"a": PDF + B64, "b": PDF + B64_2})])
    handle = scanner.payloads[next(iter(scanner.payloads))].reopen()
    assert open_files() == before + 3
    handle.close()
    scanner.close()
    assert open_files() == before


def test_a_real_sized_document_in_uneven_chunks(monkeypatch):
    monkeypatch.undo()      # the real thresholds: 64 KiB to be taken, 1 MiB to spill
    doc = os.urandom(1536 * 1024 + 1)
    body = escaped({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": PDF + base64.b64encode(doc).decode()}}]}]})
    scanner = scan([body[:5], body[5:70_000], body[70_000:70_001], body[70_001:]])
    assert len(scanner.out) < 300
    (payload,) = scanner.payloads.values()
    assert payload.data is None and content(payload) == doc
    scanner.close()


# --- the attachment decoder on taken values --------------------------------------------

def decode(value) -> object:
    """What read_json does, without HTTP: scan, claim the attachment fields, restore."""
    scanner = scan([dumps(value)])
    body = orjson.loads(scanner.out)
    claim_inline_parts(body, scanner.take)
    scanner.restore(body)
    return decode_chat_request(body), scanner


def ask(*parts):
    return {"model": "kimi", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"}, *parts]}]}


FORMS = [
    ("image_url", {"type": "image_url", "image_url": {"url": "data:image/png;base64," + B64}},
     "image", "image/png", "image.png"),
    ("image_url string", {"type": "image_url", "image_url": "data:image/png;base64," + B64},
     "image", "image/png", "image.png"),
    ("seed file_url", {"type": "file", "file_url": {"url": PDF + B64}}, "file",
     "application/pdf", "file.pdf"),
    ("openai file", {"type": "file", "file": {"file_data": PDF + B64, "filename": "q.pdf"}},
     "file", "application/pdf", "q.pdf"),
    ("openai raw base64", {"type": "file", "file": {"file_data": B64, "filename": "q.pdf"}},
     "file", "application/pdf", "q.pdf"),
    ("openai raw base64, no name", {"type": "file", "file": {"file_data": B64}},
     "file", "application/octet-stream", "file.bin"),
]


@pytest.mark.parametrize("name,part,kind,mime,filename", FORMS, ids=[f[0] for f in FORMS])
def test_taken_parts_become_attachments(name, part, kind, mime, filename):
    req, scanner = decode(ask(part))
    (a,) = req.messages[0].attachments
    assert isinstance(a.data, InlinePayload) and content(a.data) == DOC
    assert (a.kind, a.mime, a.filename, a.url) == (kind, mime, filename, None)
    scanner.close()


BAD = [
    ("an image that is not one", {"type": "image_url", "image_url": {"url": PDF + B64}},
     "unsupported_file_type", "messages[0].content[1].image_url.url"),
    ("no media type", {"type": "file", "file_url": {"url": "data:pdf;base64," + B64}},
     "invalid_data_url", "messages[0].content[1].file_url.url"),
    ("bad base64 far in", {"type": "file", "file": {"file_data": PDF + B64 * 3 + "*"}},
     "invalid_base64", "messages[0].content[1].file.file_data"),
]


@pytest.mark.parametrize("name,part,code,param", BAD, ids=[b[0] for b in BAD])
def test_taken_parts_fail_as_before(name, part, code, param):
    with pytest.raises(InvalidRequest) as e:
        decode(ask(part))
    assert (e.value.code, e.value.param) == (code, param)


def test_data_urls_outside_attachment_fields_are_text_again():
    text = PDF + B64
    req, _ = decode({"messages": [
        {"role": "user", "content": [{"type": "text", "text": text}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": text}}]},
        {"role": "tool", "tool_call_id": "1", "content": text},
        {"role": "user", "content": [{"type": "file", "file_url": {"url": "https://x.test/a"},
                                      "file": {"file_data": text}}]}]})
    assert req.messages[0].text == text and req.messages[2].text == text
    assert req.messages[1].tool_calls[0].arguments == text
    assert req.messages[3].attachments[0].url == "https://x.test/a"
