"""Anthropic `system` and message content blocks -> canonical messages (pure, no I/O).

A user turn's `tool_result` blocks become tool messages (in order), and its other blocks one
user message after them; an assistant turn's text blocks and `tool_use` blocks become one
assistant message with its calls. Thinking blocks the client replays are not sent upstream
(Kimi keeps its own). Images and documents become attachments for the upload path; a large
base64 `data` value arrives already decoded (web/inline.py, claimed by `claim_inline_data`).
"""

from __future__ import annotations

from ...canonical.request import Attachment, Message
from ...canonical.tools import ToolCall
from ...errors import InvalidRequest
from ...web.inline import InlinePayload
from ..payloads import decode_base64

# Claude Code (2.1.69 on) puts a per-session attribution block first in `system`; sent
# upstream it would change every conversation's first turn and defeat continuation.
BILLING_HEADER = "x-anthropic-billing-header:"
SOURCES = {"image": ("base64", "url"), "document": ("base64", "text", "content", "url")}


def decode_system(raw) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list):
        texts = []
        for i, block in enumerate(raw):
            if not isinstance(block, dict):
                raise InvalidRequest(f"system.{i}: must be an object", param=f"system.{i}")
            if block.get("type", "text") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
    else:
        raise InvalidRequest("system: must be a string or an array of text blocks",
                             param="system")
    kept = [t for t in map(_without_billing, texts) if t.strip()]
    return [Message(role="system", text="\n\n".join(kept))] if kept else []


def _without_billing(text: str) -> str:
    """The text without a leading billing header line (alone in its block, as Claude Code
    sends it, or the first line of a system string)."""
    if not text.lstrip().startswith(BILLING_HEADER):
        return text
    _, newline, rest = text.lstrip().partition("\n")
    return rest if newline else ""


def decode_content(role: str, content, where: str) -> list[Message]:
    if content is None or isinstance(content, str):
        return [Message(role=role, text=content or "")]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: must be a string or an array of content blocks",
                             param=where)
    blocks = []
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.{j}: must be an object with a 'type'",
                                 param=f"{where}.{j}")
        blocks.append((block, f"{where}.{j}"))
    return _assistant(blocks) if role == "assistant" else _user(blocks)


def _assistant(blocks: list) -> list[Message]:
    texts, calls = [], []
    for block, where in blocks:
        if block["type"] == "text":
            texts.append(_text(block, where))
        elif block["type"] == "tool_use":
            calls.append(_call(block, len(calls), where))
    # Joined without a separator: the text blocks of our own answer are its pieces in order.
    return [Message(role="assistant", text="".join(texts), tool_calls=tuple(calls))]


def _user(blocks: list) -> list[Message]:
    results, texts, attachments = [], [], []
    for block, where in blocks:
        if block["type"] == "tool_result":
            results.append(_result(block, where))
        else:
            _part(block, where, texts, attachments)
    if texts or attachments or not results:
        results.append(Message(role="user", text="\n".join(texts),
                               attachments=tuple(attachments)))
    return results


def _part(block: dict, where: str, texts: list, attachments: list) -> None:
    """A block inside a user turn or a tool result; unknown kinds are left out."""
    kind = block["type"]
    if kind == "text":
        texts.append(_text(block, where))
    elif kind in SOURCES:
        found = _source(block, where)
        (texts if isinstance(found, str) else attachments).append(found)
    elif kind == "search_result":
        inner = [b.get("text") for b in block.get("content") or () if isinstance(b, dict)]
        texts.append("\n".join([str(block.get("title") or ""), str(block.get("source") or "")]
                               + [t for t in inner if isinstance(t, str)]).strip())


def _text(block: dict, where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.text: must be a string", param=f"{where}.text")
    return text


def _call(block: dict, index: int, where: str) -> ToolCall:
    cid, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(cid, str) or not isinstance(name, str):
        raise InvalidRequest(f"{where}: a tool_use block needs 'id' and 'name' strings",
                             param=where)
    if not isinstance(args, dict):
        raise InvalidRequest(f"{where}.input: must be an object", param=f"{where}.input")
    return ToolCall(cid, name, args, index=index)


def _result(block: dict, where: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_use_id: a string is required",
                             param=f"{where}.tool_use_id")
    content, texts, attachments = block.get("content"), [], []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, part in enumerate(content):
            if isinstance(part, dict) and isinstance(part.get("type"), str):
                _part(part, f"{where}.content.{k}", texts, attachments)
    elif content is not None:
        raise InvalidRequest(f"{where}.content: must be a string or an array of blocks",
                             param=f"{where}.content")
    return Message(role="tool", text="\n".join(texts), tool_call_id=call_id,
                   is_error=block.get("is_error") is True, attachments=tuple(attachments))


def _source(block: dict, where: str) -> Attachment | str:
    """An image or document block: an attachment, or (a document given as blocks) text."""
    kind, source = block["type"], block.get("source")
    stype = source.get("type") if isinstance(source, dict) else None
    if stype not in SOURCES[kind]:
        hint = (" (file ids of Anthropic's Files API mean nothing to Kimi; send the content)"
                if stype == "file" else "")
        raise InvalidRequest(f"{where}.source.type: must be one of "
                             f"{', '.join(SOURCES[kind])}{hint}", param=f"{where}.source.type")
    at = f"{where}.source"
    if stype == "url":
        return _url(source.get("url"), kind, at, where)
    if stype == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return inner
        return "\n".join(b["text"] for b in inner or () if isinstance(b, dict)
                         and isinstance(b.get("text"), str))
    if stype == "text":
        data = source.get("data")
        if not isinstance(data, str):
            raise InvalidRequest(f"{at}.data: must be a string", param=f"{at}.data")
        return _inline(where, "file", data.encode(), "text/plain")
    return _base64(source, kind, at, where)


def _base64(source: dict, kind: str, at: str, where: str) -> Attachment:
    mime = source.get("media_type")
    if not isinstance(mime, str) or "/" not in mime:
        raise InvalidRequest(f"{at}.media_type: a media type is required",
                             param=f"{at}.media_type")
    if kind == "image" and not mime.startswith("image/"):
        raise InvalidRequest(f"{at}.media_type: an image block must hold an image, not {mime}",
                             param=f"{at}.media_type", code="unsupported_file_type")
    data = source.get("data")
    if not isinstance(data, (str, InlinePayload)):
        raise InvalidRequest(f"{at}.data: base64 text is required", param=f"{at}.data")
    content = data if isinstance(data, InlinePayload) else decode_base64(data, f"{at}.data")
    return _inline(where, "image" if kind == "image" else "file", content, mime.lower())


def _url(url, kind: str, at: str, where: str) -> Attachment:
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise InvalidRequest(f"{at}.url: an http or https URL is required", param=f"{at}.url",
                             code="unsupported_url_scheme")
    return Attachment(where=where, kind="image" if kind == "image" else "file", url=url.strip())


def _inline(where: str, kind: str, content, mime: str) -> Attachment:
    if not content:
        raise InvalidRequest(f"{where}: the attached content is empty", param=where,
                             code="empty_file")
    return Attachment(where=where, kind=kind, data=content, mime=mime)


def claim_inline_data(body, take) -> None:
    """Calls take(source, "data") on every base64 source content.py reads: in user turns
    and inside their tool results."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for m in messages if isinstance(messages, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        for block in content if isinstance(content, list) else ():
            for part in _with_results(block):
                source = part.get("source") if isinstance(part, dict) else None
                if isinstance(source, dict) and source.get("type") == "base64":
                    take(source, "data")


def _with_results(block) -> list:
    inner = block.get("content") if isinstance(block, dict) and \
        block.get("type") == "tool_result" else None
    return [block] + (inner if isinstance(inner, list) else [])
