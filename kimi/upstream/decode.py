"""Kimi Connect stream frames -> canonical events, and Connect errors -> gateway errors.

Tolerant by design (protocol reference, section 4.5): unknown events and masks are ignored,
`set` on a block replaces its text, `append` extends it, the echoed user message is never
answer text, and reading goes on after `done` because an error may still follow.
"""

from __future__ import annotations

from ..canonical.events import Citation, ReasoningDelta, Started, TextDelta
from ..errors import (GatewayError, InvalidRequest, NotFound, PaymentRequired, PermissionDenied,
                      RateLimited, Unauthorized, UpstreamError, UpstreamTimeout,
                      UpstreamUnavailable)
from .fields import field

# Kimi: overload reasons that another account (or a later try) may well not hit.
RETRYABLE_REASONS = {"REASON_SERVER_OVERLOADED_FOR_FREE_USER", "REASON_COMPLETION_OVERLOADED",
                     "REASON_CHAT_STREAM_PUSHING"}
# Kimi: the service is busy (not this account's limit): code "upstream_overloaded".
OVERLOADED = {"REASON_SERVER_OVERLOADED_FOR_FREE_USER", "REASON_COMPLETION_OVERLOADED"}
CONTEXT_TOO_LONG = "REASON_TOKEN_LENGTH_TOO_LONG"
_BLOCKED = {"MESSAGE_STATUS_BLOCKED", "MESSAGE_STATUS_FILTERED", "MESSAGE_STATUS_REJECTED"}


class UpstreamAuthError(Unauthorized):
    """Kimi refused the account's token (HTTP 401 or an `unauthenticated` error)."""


class StreamDecoder:
    """One per upstream stream; `decode(frame)` returns the events a frame carries."""

    __slots__ = ("chat_id", "message_id", "finish_reason", "finish_message", "_blocks",
                 "_refs")

    def __init__(self):
        self.chat_id: str | None = None
        self.message_id: str | None = None
        self.finish_reason = "stop"
        self.finish_message: str | None = None
        self._blocks: dict[str, list[str]] = {}   # block id -> pieces of text emitted so far
        self._refs: set[str] = set()              # search results already reported

    def decode(self, frame: dict) -> tuple:
        block = frame.get("block")
        if block is not None:
            return self._block(frame.get("op"), frame.get("mask") or "", block)
        if "error" in frame:
            raise map_connect_error(frame["error"])
        if "done" in frame:
            return ()   # Kimi: an error may still follow; the end-stream frame ends the stream
        message = frame.get("message")
        if message is not None:
            return self._message(message)
        chat = frame.get("chat")
        if chat is not None and chat.get("id") and chat["id"] != self.chat_id:
            self.chat_id = chat["id"]
            return (Started(chat_id=self.chat_id),)
        return ()   # heartbeat, chat.name and anything unknown

    def _block(self, op, mask: str, block: dict) -> tuple:
        if mask.startswith("block.text") or (not mask and "text" in block):
            part = block.get("text") or {}
            kind = ReasoningDelta if part.get("flags") == "thinking" else TextDelta
        elif mask.startswith("block.think") or (not mask and "think" in block):
            part = block.get("think") or {}
            kind = ReasoningDelta
        elif "tool" in block or "search" in block:
            return self._search_results(block)
        else:
            return ()   # stages and anything unknown: not text
        content = part.get("content") or ""
        key = ("t" if kind is TextDelta else "r") + str(block.get("id", ""))
        if op == "append":
            if not content:
                return ()
            pieces = self._blocks.get(key)
            if pieces is None:
                self._blocks[key] = [content]
            else:
                pieces.append(content)
            return (kind(content),)
        # `set` replaces the block's text. What was already sent cannot be taken back, so only
        # the part beyond it is sent; a replacement that diverges is sent whole.
        before = "".join(self._blocks.get(key, ()))
        self._blocks[key] = [content]
        delta = content[len(before):] if content.startswith(before) else content
        return (kind(delta),) if delta else ()

    def _search_results(self, block: dict) -> tuple:
        # Kimi: results arrive as block.tool.contents[].searchResult {refIndex, base{title,url}};
        # before 2026-03 as block.search.webPages[] {title, url} without a refIndex.
        tool = block.get("tool") or {}
        items = [field(c, "searchResult") for c in tool.get("contents") or ()
                 if isinstance(c, dict) and isinstance(field(c, "searchResult"), dict)]
        pages = field(block.get("search") or {}, "webPages") or ()
        items += [{"base": p, "refIndex": f"webpage:{p.get('url')}"} for p in pages
                  if isinstance(p, dict)]
        return self._citations(items)

    def _citations(self, items) -> tuple:
        out = []
        for item in items:
            if not isinstance(item, dict):
                continue
            base = item.get("base") if isinstance(item.get("base"), dict) else item
            url = base.get("url")
            ref = str(field(item, "refIndex") or item.get("id") or url or "")
            if not url or not isinstance(url, str) or ref in self._refs:
                continue
            self._refs.add(ref)
            out.append(Citation(ref=ref, url=url, title=str(base.get("title") or "")))
        return tuple(out)

    def _message(self, message: dict) -> tuple:
        if message.get("role") == "user":
            return ()   # Kimi echoes the prompt: never answer text.
        out: tuple = ()
        refs = message.get("refs")
        if isinstance(refs, dict):
            # Kimi: searchChunks mirrors the tool block's results; usedSearchChunks is a subset.
            out = self._citations(list(field(refs, "searchChunks") or ()) +
                                  list(field(refs, "usedSearchChunks") or ()))
        if message.get("status") in _BLOCKED:
            self.finish_reason = "content_filter"
            self.finish_message = _blocked_text(message)
        mid = message.get("id")
        if message.get("role") == "assistant" and mid and mid != self.message_id:
            self.message_id = mid
            out += (Started(chat_id=self.chat_id, message_id=mid),)
        return out


def _blocked_text(message: dict) -> str:
    # Kimi: a moderation stop is a bare status change; any reason text it carries is passed on.
    for key in ("statusMessage", "status_message", "reason", "message"):
        if isinstance(message.get(key), str) and message[key]:
            return f"Kimi stopped the answer: {message[key]}"
    return "Kimi stopped the answer (content moderation)"


_CODE_MAP = {
    "unauthenticated": UpstreamAuthError,
    "invalid_argument": InvalidRequest,
    "permission_denied": PermissionDenied,
    "not_found": NotFound,
    "resource_exhausted": RateLimited,
    "unavailable": UpstreamUnavailable,
    "deadline_exceeded": UpstreamTimeout,
}


def map_connect_error(error, http_status: int | None = None,
                      retry_after: float | None = None) -> GatewayError:
    """A Connect error object (in-stream or unary) -> the gateway error a client should get."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = str(error.get("code") or "")
    reason, text, paywall = _debug(error)
    text = text or error.get("message") or code or "unknown error"
    if paywall:
        return PaymentRequired(f"Kimi: {text} (this feature needs a paid plan on the account)",
                               code="upstream_paywall")
    if reason == CONTEXT_TOO_LONG:
        return InvalidRequest(f"Kimi: {text} (the conversation is too long)",
                              code="context_length_exceeded")
    if reason == "REASON_CHAT_STREAM_PUSHING":
        cls = RateLimited
    else:
        cls = _CODE_MAP.get(code) or _status_class(http_status)
    retryable = (reason in RETRYABLE_REASONS or cls in (UpstreamUnavailable, UpstreamTimeout)
                 or (code == "resource_exhausted" and not reason) or (http_status or 0) >= 500
                 or http_status == 429)
    label = ", ".join(x for x in (code, reason) if x)
    ours = f"upstream_{code}" if code else "upstream_error"
    return cls(f"Kimi: {text}" + (f" ({label})" if label else ""),
               code="upstream_overloaded" if reason in OVERLOADED else ours,
               retry_after=retry_after, retryable=retryable)


def _debug(error: dict) -> tuple[str, str | None, object]:
    for detail in error.get("details") or ():
        debug = detail.get("debug") if isinstance(detail, dict) else None
        if isinstance(debug, dict):
            localized = debug.get("localizedMessage") or {}
            return (str(debug.get("reason") or ""), localized.get("message"), debug.get("paywall"))
    return "", None, None


def _status_class(status: int | None):
    if status == 401:
        return UpstreamAuthError
    if status == 429:
        return RateLimited
    if status in (502, 503):
        return UpstreamUnavailable
    if status == 504:
        return UpstreamTimeout
    return UpstreamError
