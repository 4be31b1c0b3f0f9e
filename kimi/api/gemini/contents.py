"""Gemini `contents` and `systemInstruction` -> canonical messages (pure, no I/O).

A `user` content becomes a user message (text parts, inlineData and fileData attachments)
and one tool message per functionResponse part; a `model` content becomes an assistant
message (text parts joined as they were streamed, functionCall parts as calls). Thought parts
are the model's own reasoning and are dropped. Consecutive model contents are one answer:
a client records a streamed answer one chunk at a time.

Function call ids: the answer's calls carry ids, and clients echo them; a functionResponse
without an id (the SDK's `Part.from_function_response(name=..., response=...)`) answers the
first unanswered call of that name in the model turn before it. A history call without an
id gets one from its position, so its result still pairs with it.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes

import orjson

from ...canonical.request import Attachment, Message
from ...canonical.tools import ToolCall
from ...errors import InvalidRequest
from ...web.inline import InlinePayload
from .wire import array, get, obj

# inlineData carries plain base64 under "data": decoded while the body is read (web/inline.py).
RAW_BASE64 = (b"data",)

ROLES = ("user", "model", "function", "tool")


def decode_system(raw) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message(role="system", text=raw)] if raw else []
    content = obj(raw, "systemInstruction")
    texts = [p.get("text") for p in array(content.get("parts"), "systemInstruction.parts")
             if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return [Message(role="system", text="\n".join(texts))] if texts else []


def decode_contents(raw) -> list[Message]:
    if isinstance(raw, dict):           # a single Content is accepted as the API does
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'contents' must be a non-empty array", param="contents")
    messages: list[Message] = []
    pending: list[ToolCall] = []    # calls of the latest model turn not answered yet
    for i, content in enumerate(raw):
        where = f"contents[{i}]"
        content = obj(content, where, required=True)
        role = content.get("role") or "user"
        if role not in ROLES:
            raise InvalidRequest(f"{where}.role must be 'user' or 'model'", param=f"{where}.role")
        parts = array(content.get("parts"), f"{where}.parts")
        if role == "model":
            _add_model(messages, parts, where)
            pending = list(messages[-1].tool_calls)
        else:
            messages += _user(parts, where, pending)
    if not any(m.role != "system" for m in messages):
        raise InvalidRequest("'contents' has no parts to answer", param="contents")
    return messages


def _add_model(messages: list[Message], parts: list, where: str) -> None:
    texts, calls = [], []
    previous = messages[-1] if messages and messages[-1].role == "assistant" else None
    base = len(previous.tool_calls) if previous else 0
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        part = obj(part, at, required=True)
        call = get(part, "functionCall")
        if call is not None:
            calls.append(_call(obj(call, f"{at}.functionCall"), f"{at}.functionCall",
                               f"{where}.{j}", base + len(calls)))
        elif isinstance(part.get("text"), str):
            if not part.get("thought"):
                texts.append(part["text"])
        elif _unsupported(part):
            raise InvalidRequest(f"{at}: a model part must be text or functionCall", param=at)
    if previous is not None:        # the same answer, recorded chunk by chunk
        previous.text += "".join(texts)
        previous.tool_calls += tuple(calls)
    else:
        messages.append(Message(role="assistant", text="".join(texts), tool_calls=tuple(calls)))


def _call(call: dict, where: str, position: str, index: int) -> ToolCall:
    name = _name(call, where)
    args = call.get("args")
    if args is not None and not isinstance(args, dict):
        raise InvalidRequest(f"{where}.args must be an object", param=f"{where}.args")
    cid = call.get("id")
    if not isinstance(cid, str) or not cid:
        cid = f"call_{position.replace('contents[', '').replace(']', '')}"
    return ToolCall(cid, name, args or {}, index=index)


def _name(part: dict, where: str) -> str:
    """The function name of a functionCall or functionResponse part."""
    name = part.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name must be a non-empty string", param=f"{where}.name")
    return name


def _user(parts: list, where: str, pending: list[ToolCall]) -> list[Message]:
    texts, attachments, results = [], [], []
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        part = obj(part, at, required=True)
        inline, linked = get(part, "inlineData"), get(part, "fileData")
        response = get(part, "functionResponse")
        if isinstance(part.get("text"), str):
            if not part.get("thought"):
                texts.append(part["text"])
        elif inline is not None:
            attachments.append(_inline(obj(inline, f"{at}.inlineData"), f"{at}.inlineData"))
        elif linked is not None:
            attachments.append(_linked(obj(linked, f"{at}.fileData"), f"{at}.fileData"))
        elif response is not None:
            results.append(_result(obj(response, f"{at}.functionResponse"),
                                   f"{at}.functionResponse", pending))
        elif get(part, "functionCall") is not None:
            raise InvalidRequest(f"{at}: a functionCall belongs in a 'model' content", param=at)
        elif _unsupported(part):
            raise InvalidRequest(f"{at}: part kind {sorted(part)} is not supported (text, "
                                 "inlineData, fileData, functionResponse are)", param=at)
    out = results
    if texts or attachments:
        out.append(Message(role="user", text="\n".join(texts), attachments=tuple(attachments)))
    return out


def _unsupported(part: dict) -> bool:
    """Parts that carry something we cannot use (code execution, ...); a bare thought
    signature or an empty part is harmless."""
    return bool(set(part) - {"thought", "thoughtSignature", "thought_signature", "text",
                             "videoMetadata", "video_metadata", "mediaResolution",
                             "media_resolution", "partMetadata", "part_metadata"})


def _result(response: dict, where: str, pending: list[ToolCall]) -> Message:
    name = _name(response, where)
    cid = response.get("id")
    if cid is not None and not isinstance(cid, str):
        raise InvalidRequest(f"{where}.id must be a string", param=f"{where}.id")
    match = next((c for c in pending if (c.id == cid if cid else c.name == name)), None)
    if match is not None:
        pending.remove(match)
        cid = match.id
    body = response.get("response")
    if body is not None and not isinstance(body, dict):
        raise InvalidRequest(f"{where}.response must be an object", param=f"{where}.response")
    text, is_error = _result_text(body or {})
    return Message(role="tool", text=text, name=name, tool_call_id=cid or name,
                   is_error=is_error)


def _result_text(body: dict) -> tuple[str, bool]:
    """Google's convention is {"output": ...} or {"error": ...}; anything else is the result."""
    if set(body) == {"output"} and isinstance(body["output"], str):
        return body["output"], False
    if set(body) == {"error"}:
        err = body["error"]
        return (err if isinstance(err, str) else orjson.dumps(err).decode()), True
    return orjson.dumps(body).decode(), False


def _inline(inline: dict, where: str) -> Attachment:
    mime = get(inline, "mimeType")
    if not isinstance(mime, str) or "/" not in mime:
        raise InvalidRequest(f"{where}.mimeType must be a media type such as image/png",
                             param=f"{where}.mimeType")
    data = inline.get("data")
    if not isinstance(data, (str, InlinePayload)) or not data:
        raise InvalidRequest(f"{where}.data must be base64 text", param=f"{where}.data")
    content = data if isinstance(data, InlinePayload) else _base64(data, f"{where}.data")
    if not content:
        raise InvalidRequest(f"{where}: the attached content is empty", param=where,
                             code="empty_file")
    kind = "image" if mime.lower().startswith("image/") else "file"
    name = get(inline, "displayName")
    return Attachment(where=where, kind=kind, data=content, mime=mime.lower(),
                      filename=name if isinstance(name, str) and name else _filename(kind, mime))


def _base64(text: str, where: str) -> bytes:
    """Standard or URL-safe base64, padded or not (proto3 JSON accepts all four)."""
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text = "".join(text.split()) if any(c.isspace() for c in text[:4096]) else text
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where} is not valid base64", param=where,
                             code="invalid_base64") from None


def _linked(linked: dict, where: str) -> Attachment:
    uri = get(linked, "fileUri")
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidRequest(f"{where}.fileUri must be a URL", param=f"{where}.fileUri")
    uri = uri.strip()
    if not uri.lower().startswith(("http://", "https://")):
        raise InvalidRequest(f"{where}.fileUri: only http and https URLs can be fetched (the "
                             "Gemini Files API is not served; send the bytes as inlineData)",
                             param=f"{where}.fileUri", code="unsupported_url_scheme")
    mime = get(linked, "mimeType")
    kind = "image" if isinstance(mime, str) and mime.lower().startswith("image/") else "file"
    name = get(linked, "displayName")
    return Attachment(where=where, kind=kind, url=uri,
                      filename=name if isinstance(name, str) and name else None)


def _filename(kind: str, mime: str) -> str:
    ext = mimetypes.guess_extension(mime.lower()) or (".png" if kind == "image" else ".bin")
    return ("image" if kind == "image" else "file") + ext


def claim_inline_data(body, take) -> None:
    """Calls take(inlineData, "data") on every inline part _user() reads, so a large one
    stays decoded (an InlinePayload) instead of becoming text again."""
    contents = body.get("contents") if isinstance(body, dict) else None
    if isinstance(contents, dict):
        contents = [contents]
    for content in contents if isinstance(contents, list) else ():
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            inline = get(part, "inlineData") if isinstance(part, dict) else None
            if isinstance(inline, dict):
                take(inline, "data")
