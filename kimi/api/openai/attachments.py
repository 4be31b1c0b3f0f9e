"""OpenAI image and file content parts -> canonical attachments (pure, no I/O).

Accepted in any message:

    {"type": "image_url", "image_url": {"url": "https://..." | "data:image/png;base64,..."}}
    {"type": "file", "file_url": {"url": "https://..." | "data:...;base64,..."}}   (the seeds)
    {"type": "file", "file": {"file_data": "data:...;base64,..." | "<base64>", "filename": "..."}}

Everything that can be checked without I/O is checked here, so a bad part fails with a 400
naming it before anything goes upstream. Size limits and remote URLs are checked later.

A large base64 data URL arrives already decoded (web/inline.py): claim_inline_parts() names
the fields that may hold one, and an InlinePayload there stands for the data URL it was.
"""

from __future__ import annotations

import mimetypes
import urllib.parse

from yarl import URL

from ...canonical.request import Attachment
from ...errors import InvalidRequest
from ...web.inline import InlinePayload
from ..payloads import decode_base64

ATTACHMENT_TYPES = {"image_url", "file"}
MAX_HEADER = 1024               # "data:<media type>;<params>;base64," is short


def decode_attachment(part: dict, where: str) -> Attachment:
    if part["type"] == "image_url":
        url = _url_of(part.get("image_url"), f"{where}.image_url")
        return _from_url(url, "image", None, f"{where}.image_url.url", where)
    if "file_url" in part:
        url = _url_of(part.get("file_url"), f"{where}.file_url")
        return _from_url(url, "file", None, f"{where}.file_url.url", where)
    spec = part.get("file")
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{where}: a file part needs 'file' (file_data, filename) or "
                             "'file_url'", param=where)
    filename = spec.get("filename")
    if filename is not None and (not isinstance(filename, str) or not filename.strip()):
        raise InvalidRequest(f"{where}.file.filename must be a non-empty string",
                             param=f"{where}.file.filename")
    data = spec.get("file_data")
    if isinstance(data, InlinePayload) and data.header:
        return _from_url(data, "file", filename, f"{where}.file.file_data", where)
    if isinstance(data, InlinePayload):     # raw base64, decoded already
        return _inline(where, "file", data, _guess_mime(filename), filename)
    if not isinstance(data, str) or not data:
        hint = (" (file ids from OpenAI's Files API mean nothing to Kimi)"
                if "file_id" in spec else "")
        raise InvalidRequest(f"{where}.file.file_data must be a data URL or base64 text{hint}",
                             param=f"{where}.file.file_data")
    if data.startswith("data:"):
        return _from_url(data, "file", filename, f"{where}.file.file_data", where)
    content = decode_base64(data, f"{where}.file.file_data")
    return _inline(where, "file", content, _guess_mime(filename), filename)


def claim_inline_parts(body, take) -> None:
    """Calls take(container, key) on every field decode_attachment reads a data URL from."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for m in messages if isinstance(messages, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        for part in content if isinstance(content, list) else ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "file" and "file_url" not in part:
                if isinstance(part.get("file"), dict):
                    take(part["file"], "file_data")
                continue
            key = {"image_url": "image_url", "file": "file_url"}.get(kind)
            if key is not None and isinstance(part.get(key), dict):
                take(part[key], "url")
            elif key is not None:
                take(part, key)


def _url_of(spec, where: str) -> str | InlinePayload:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if isinstance(url, InlinePayload):
        return url
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest(f"{where}.url must be a non-empty string", param=f"{where}.url")
    return url.strip()


def _from_url(url: str | InlinePayload, kind: str, filename: str | None, field: str,
              where: str) -> Attachment:
    if isinstance(url, InlinePayload):
        scheme = "data"
    else:
        colon = url.find(":", 0, 32)    # not url.split(): that would copy a whole document
        scheme = url[:colon].lower() if colon > 0 else ""
    if scheme == "data":
        mime, content = decode_data_url(url, field)
        if kind == "image" and not mime.startswith("image/"):
            raise InvalidRequest(f"{field}: an image_url part must hold an image, not {mime}",
                                 param=field, code="unsupported_file_type")
        return _inline(where, kind, content, mime, filename)
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"{field}: only http, https and data URLs are accepted"
                             + (f", not {scheme}:" if scheme else ""),
                             param=field, code="unsupported_url_scheme")
    # Parsed by the same parser the download uses (yarl): two parsers could disagree on the
    # host of an odd URL (a backslash, say), and the one that checks must be the one that goes.
    try:
        parsed = URL(url)
        valid = bool(parsed.host) and parsed.port is not None
    except (ValueError, TypeError, UnicodeError):
        valid = False
    if not valid:
        raise InvalidRequest(f"{field} is not a valid URL", param=field, code="invalid_url")
    return Attachment(where=where, kind=kind, url=url, filename=filename)


def _inline(where: str, kind: str, content: bytes | InlinePayload, mime: str,
            filename: str | None) -> Attachment:
    if not content:
        raise InvalidRequest(f"{where}: the attached content is empty", param=where,
                             code="empty_file")
    return Attachment(where=where, kind=kind, data=content, mime=mime,
                      filename=filename or default_filename(kind, mime))


def decode_data_url(url: str | InlinePayload, field: str) -> tuple[str, bytes | InlinePayload]:
    """RFC 2397: data:[<mediatype>][;base64],<data> -> (mime, bytes). An InlinePayload is
    decoded already: only its header is read."""
    payload = url if isinstance(url, InlinePayload) else None
    if payload is not None:
        url = payload.header
    comma = url.find(",", 0, MAX_HEADER)
    if comma < 0:
        raise InvalidRequest(f"{field} is not a valid data URL (no comma)", param=field,
                             code="invalid_data_url")
    params = [p.strip() for p in url[5:comma].split(";")]
    is_base64 = params[-1].lower() == "base64"
    if is_base64:
        params.pop()
    mime = (params[0] or "text/plain").lower() if params else "text/plain"
    if "/" not in mime:
        raise InvalidRequest(f"{field}: '{mime}' is not a media type", param=field,
                             code="invalid_data_url")
    if payload is not None:
        return mime, payload
    if is_base64:
        return mime, decode_base64(url, field, start=comma + 1)
    return mime, urllib.parse.unquote_to_bytes(url[comma + 1:])


def _guess_mime(filename: str | None) -> str:
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    return guessed or "application/octet-stream"


def default_filename(kind: str, mime: str | None) -> str:
    ext = mimetypes.guess_extension(mime or "") or (".png" if kind == "image" else ".bin")
    return ("image" if kind == "image" else "file") + ext
