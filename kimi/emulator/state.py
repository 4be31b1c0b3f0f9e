"""Everything the emulator remembers lives in an ``EmulatorState`` instance."""

from __future__ import annotations

import asyncio
import collections
import datetime
import re
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .tokens import decode_claims, mint_refresh_token

DEFAULT_THINK = "Let me think about it \u2026 step by step."


def default_text(turn: int, prompt: str) -> str:
    """The deterministic default answer for the ``turn``-th user message of a chat. The echo
    shows tool-call markers with a space after `<` (`< tool_call`): a model does not call a
    tool by quoting the calling convention it was told, so neither does the echo."""
    echo = _CALL_MARKER.sub(r"< \1", prompt)
    return f"[turn {turn}] Hello from the emulator \u2713 \u4e2d\u6587 \U0001F389. You said: {echo}"


_CALL_MARKER = re.compile(r"<(/?(?:tool_call|function_calls|invoke|\|tool_call))")


def now_rfc3339() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@dataclass
class Call:
    path: str
    method: str
    headers: dict
    body: Any
    time: float


@dataclass
class MessageRecord:
    id: str
    parent_id: str
    role: str
    text: str = ""
    think: str = ""
    status: str = "MESSAGE_STATUS_COMPLETED"
    files: list = field(default_factory=list)
    create_time: str = field(default_factory=now_rfc3339)


@dataclass
class ChatRecord:
    id: str
    sub: str
    name: str = "Untitled Chat"
    messages: list = field(default_factory=list)
    deleted: bool = False
    create_time: str = field(default_factory=now_rfc3339)
    update_time: str = field(default_factory=now_rfc3339)

    def message(self, message_id: str) -> MessageRecord | None:
        for message in self.messages:
            if message.id == message_id:
                return message
        return None

    def user_turns(self, parent_id: str) -> int:
        """Number of user messages on the path from ``parent_id`` up to the root."""
        count, current, seen = 0, self.message(parent_id), set()
        while current is not None and current.id not in seen:
            seen.add(current.id)
            count += current.role == "user"
            current = self.message(current.parent_id)
        return count


@dataclass
class FileRecord:
    id: str
    sub: str
    name: str
    content_type: str
    data: bytes
    progress_left: int = 1
    checksum: str = ""
    create_time: str = field(default_factory=now_rfc3339)


@dataclass
class Fault:
    """An injected failure. ``kind`` is one of: http, error, done_then_error, truncate,
    split, coalesce, huge, silence, moderation, garbage (see the package docstring)."""

    kind: str
    status: int = 500
    code: str | None = None
    message: str | None = None
    reason: str | None = None
    paywall: dict | None = None
    retry_after: str | int | None = None
    after: int = 0
    where: str = "data"
    size: int | None = None
    seconds: float = 5.0
    heartbeats: bool = False
    prelude: bool = True


@dataclass
class Reply:
    """A scripted reply. ``chat_id``/``message_id`` are filled in on ``state.last_reply``.
    ``when``: only a request whose prompt contains this text takes the reply (an agent's side
    calls, e.g. a title request racing the main one, then get the default answer)."""

    text: str | None = None
    think: str | None = None
    chunk: int = 4
    search: list | None = None
    citations: str = "e3a0"
    fault: Fault | None = None
    title: str = "Emulated chat"
    pause: float = 0.0
    chat_id: str | None = None
    message_id: str | None = None
    when: str | None = None


class EmulatorState:
    """All emulator state and knobs; tests read and set these attributes directly."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.chat_requests: list[dict] = []
        self.chats: dict[str, ChatRecord] = {}
        self.deleted: list[str] = []
        self.cancelled: list[dict] = []
        self.replies: collections.deque[Reply] = collections.deque()
        self.last_reply: Reply | None = None
        self.active_streams: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.rt_used: dict[str, float] = {}
        self.revoked_subs: set[str] = set()
        self.revoked_tokens: set[str] = set()     # single access tokens invalidated server-side
        self.refresh_calls = 0
        self.files: dict[str, FileRecord] = {}
        self.streams: dict[str, asyncio.Event] = {}
        self.connections = 0        # client connections that carried a request, ever
        self._open: dict[object, None] = {}
        self._prune_at = 64
        # knobs
        self.auth_error_style = "http"
        self.bad_frame_style = "http"
        self.strict_empty_ids = False
        self.id_style = "uuid"
        self.call_delay = 0.0
        self.chunk_delay = 0.0
        self.frames_per_write = 1   # >1: frames written together (flushed before any wait)
        self.end_pause = 0.0        # seconds between the end-stream frame and the response's end
        self.reject_concurrent = True
        self.models_fail = False
        self.catalog = "2026-05"
        self.heartbeat_interval: float | None = None
        self.parse_steps = 1
        self.parse_fail: set[str] = set()
        self.parse_never: set[str] = set()
        self.upload_fail_names: set[str] = set()
        self.upload_delay = 0.0
        self.uploads_active = 0
        self.max_uploads_active = 0
        self.rt_grace = 0.0
        self.refresh_gateway_refuses = False
        self.access_ttl = 900
        self.field_names = "camel"              # or "snake": proto field names (spelling.py)

    def saw_connection(self, conn) -> None:
        """Counts a connection at its first request. `conn` is the server's protocol object
        of the connection, held until it is closed (its `transport` is None then)."""
        if conn in self._open:
            return
        self.connections += 1
        self._open[conn] = None
        if len(self._open) > self._prune_at:
            for old in [c for c in self._open if getattr(c, "transport", None) is None]:
                del self._open[old]
            self._prune_at = 2 * len(self._open) + 64

    def new_id(self) -> str:
        if self.id_style == "xid":
            alphabet = string.digits + string.ascii_lowercase
            return "".join(secrets.choice(alphabet) for _ in range(20))
        return str(uuid.uuid4())

    def issue_refresh_token(self, sub: str = "user-1", ttl: float = 90 * 86400) -> str:
        token = mint_refresh_token(sub, ttl)
        self.refresh_tokens[token] = sub
        return token

    def use_refresh_token(self, token: str | None) -> str | None:
        """Validate and consume a refresh token; returns its sub or None."""
        if not token or token not in self.refresh_tokens:
            return None
        deadline = self.rt_used.get(token)
        if deadline is not None and time.monotonic() > deadline:
            self._forget(token)
            return None
        claims = decode_claims(token) or {}
        sub = self.refresh_tokens[token]
        if claims.get("exp", 0) <= time.time() or sub in self.revoked_subs:
            return None
        if self.rt_grace <= 0:
            self._forget(token)
        elif deadline is None:
            self.rt_used[token] = time.monotonic() + self.rt_grace
        return sub

    def _forget(self, token: str) -> None:
        self.refresh_tokens.pop(token, None)
        self.rt_used.pop(token, None)

    def stream_started(self, sub: str) -> None:
        count = self.active_streams.get(sub, 0) + 1
        self.active_streams[sub] = count
        self.max_active[sub] = max(self.max_active.get(sub, 0), count)

    def stream_ended(self, sub: str) -> None:
        self.active_streams[sub] = max(0, self.active_streams.get(sub, 0) - 1)
