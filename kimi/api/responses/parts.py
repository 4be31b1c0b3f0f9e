"""Responses content parts -> text and canonical attachments (pure, no I/O).

    {"type": "input_text" | "output_text" | "text", "text": "..."}
    {"type": "input_image", "image_url": "https://..." | "data:image/png;base64,..."}
    {"type": "input_file", "file_data": "data:...;base64,..." | "<base64>", "filename": "..."}
    {"type": "input_file", "file_url": "https://..."}

Parts of other types (refusal, audio, ...) carry nothing Kimi can use and are skipped.

A large base64 data URL (or `file_data`) arrives decoded already (web/inline.py):
claim_inline_parts() names the fields that may hold one, and an InlinePayload there stands
for the text it was.
"""

from __future__ import annotations

import binascii
import mimetypes

from ...canonical.request import Attachment
from ...errors import InvalidRequest
from ...web.inline import InlinePayload

TEXT_PARTS = {"input_text", "output_text", "text"}


def content_of(content, where: str) -> tuple[str, tuple[Attachment, ...]]:
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of parts", param=where)
    texts, attachments = [], []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str | None):
            raise InvalidRequest(f"{at}.type must be a string", param=f"{at}.type")
        if kind in TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{at}.text must be a string", param=f"{at}.text")
            texts.append(part["text"])
        elif kind == "input_image":
            attachments.append(_image(part, at))
        elif kind == "input_file":
            attachments.append(_file(part, at))
    return "\n".join(texts), tuple(attachments)


def claim_inline_parts(body, take) -> None:
    """Calls take(container, key) on every field content_of reads a data URL from."""
    items = body.get("input") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else ():
        content = (item.get("content") or item.get("output")) if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "input_image":
                take(part, "image_url")
            elif kind == "input_file":
                take(part, "file_data")


def _image(part: dict, where: str) -> Attachment:
    url = part.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, InlinePayload):
        return _from_payload(url, "image", None, where)
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest(f"{where}.image_url must be an http(s) or data URL (file ids from "
                             "OpenAI's Files API mean nothing to Kimi)", param=f"{where}.image_url")
    return _from_url(url.strip(), "image", None, where)


def _file(part: dict, where: str) -> Attachment:
    filename = part.get("filename") if isinstance(part.get("filename"), str) else None
    if isinstance(part.get("file_url"), str):
        return _from_url(part["file_url"].strip(), "file", filename, where)
    data = part.get("file_data")
    if isinstance(data, InlinePayload):
        return _from_payload(data, "file", filename, where)
    if not isinstance(data, str) or not data:
        raise InvalidRequest(f"{where}.file_data must be a data URL or base64 text (file ids "
                             "from OpenAI's Files API mean nothing to Kimi)",
                             param=f"{where}.file_data")
    if data.startswith("data:"):
        return _from_url(data, "file", filename, where)
    mime = (mimetypes.guess_type(filename)[0] if filename else None) or "application/octet-stream"
    return _inline(where, "file", _base64(data, where), mime, filename)


def _from_payload(payload: InlinePayload, kind: str, filename: str | None,
                  where: str) -> Attachment:
    header = payload.header[5:].split(";")[0].lower() if payload.header else ""
    mime = header or (mimetypes.guess_type(filename)[0] if filename else None) \
        or "application/octet-stream"
    if kind == "image" and not mime.startswith("image/"):
        raise InvalidRequest(f"{where}: an input_image must hold an image, not {mime}",
                             param=where, code="unsupported_file_type")
    return _inline(where, kind, payload, mime, filename)


def _from_url(url: str, kind: str, filename: str | None, where: str) -> Attachment:
    scheme = url[:url.find(":", 0, 32)].lower() if ":" in url[:32] else ""
    if scheme == "data":
        comma = url.find(",", 0, 1024)
        header = url[5:comma].split(";") if comma > 0 else []
        if not header or header[-1].lower() != "base64" or "/" not in header[0]:
            raise InvalidRequest(f"{where}: a data URL must be data:<type>;base64,<data>",
                                 param=where, code="invalid_data_url")
        mime = header[0].lower()
        if kind == "image" and not mime.startswith("image/"):
            raise InvalidRequest(f"{where}: an input_image must hold an image, not {mime}",
                                 param=where, code="unsupported_file_type")
        return _inline(where, kind, _base64(url[comma + 1:], where), mime, filename)
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"{where}: only http, https and data URLs are accepted",
                             param=where, code="unsupported_url_scheme")
    return Attachment(where=where, kind=kind, url=url, filename=filename)


def _base64(text: str, where: str) -> bytes:
    try:
        return binascii.a2b_base64(text.strip(), strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where} is not valid base64", param=where,
                             code="invalid_base64") from None


def _inline(where: str, kind: str, data: bytes | InlinePayload, mime: str,
            filename: str | None) -> Attachment:
    if not len(data):
        raise InvalidRequest(f"{where}: the attached content is empty", param=where,
                             code="empty_file")
    ext = mimetypes.guess_extension(mime) or ".bin"
    return Attachment(where=where, kind=kind, data=data, mime=mime,
                      filename=filename or ("image" if kind == "image" else "file") + ext)
