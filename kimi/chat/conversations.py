"""Conversations that last: which upstream chat a turn continues, and what it sends.

Three ways in: the stateful URL `/v1/chat/completions/{id}`, the seeds' `conversation_id`
body field (the `id` of an earlier answer), and automatic continuation, where a plain request
whose history is a stored transcript plus new turns continues that upstream chat. In every
case only the new turns go upstream, on the account that holds the chat.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field

import orjson

from ..canonical.request import ChatRequest, Message
from ..canonical.tools import ToolCall, ToolKind
from ..coord import ConversationLocks, LocalLocks
from ..errors import InvalidRequest, NotFound
from ..store.conversations import Conversation, ConversationRepo
from .prompt import build_prompt, tools_digest

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
NEW_IDS = {"", "none", "None", "null", "new"}


def check_id(cid: str, param: str = "conversation_id") -> str:
    if not ID_PATTERN.match(cid):
        raise InvalidRequest("a conversation id is 1-128 characters of letters, digits and . _ : -, "
                             "starting with a letter or digit", param=param,
                             code="invalid_conversation_id")
    return cid


def transcript_of(messages: list[Message]) -> list[list]:
    return [row_of(m) for m in messages]


def row_of(m: Message) -> list:
    """A transcript row: [role, text], and a third item only for tool traffic (so rows of
    plain chats, and their digests, are what they always were). Arguments are compared as
    canonical JSON: clients re-serialise them."""
    row = [m.role, m.text.rstrip()]
    if m.tool_calls:
        row.append({"calls": [[c.id, c.name, _canonical(c.arguments), c.kind.value]
                              for c in m.tool_calls]})
    elif m.role == "tool" and m.tool_call_id:
        row.append({"call": m.tool_call_id, "error": m.is_error})
    return row


def _canonical(arguments) -> str:
    if isinstance(arguments, str):
        return arguments
    return orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS).decode()


def message_of(row: list) -> Message:
    extra = row[2] if len(row) > 2 else {}
    calls = tuple(ToolCall(cid, name, _arguments(args, kind), ToolKind(kind), i)
                  for i, (cid, name, args, kind) in enumerate(extra.get("calls", ())))
    return Message(role=row[0], text=row[1], tool_calls=calls, tool_call_id=extra.get("call"),
                   is_error=bool(extra.get("error")))


def _arguments(raw: str, kind: str):
    if kind == ToolKind.CUSTOM.value:
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def digest(transcript: list) -> str:
    return hashlib.sha256(orjson.dumps(transcript)).hexdigest()


def prefix_digests(messages: list[Message]) -> list[str]:
    """Digests of every prefix that ends with an assistant turn and leaves something new,
    in one pass: the hash of the JSON array is extended row by row (same bytes as digest())."""
    out, rows = [], transcript_of(messages)
    h = hashlib.sha256(b"[")
    for k, row in enumerate(rows[:-1]):
        h.update((b"," if k else b"") + orjson.dumps(row))
        if row[0] == "assistant":
            done = h.copy()
            done.update(b"]")
            out.append(done.hexdigest())
    return out


@dataclass
class Plan:
    """What one turn will do upstream."""
    conv_id: str | None                 # where the result is stored; None = stateless
    prompt: str
    new_messages: list[Message]
    existing: Conversation | None = None
    chat_id: str | None = None          # continue this upstream chat ...
    parent_id: str | None = None
    owner: str | None = None            # ... on this account
    rebuilt: bool = False
    ttl: float = 0.0
    replaces: str | None = None         # automatic continuation: the row this turn supersedes
    auto: bool = False                  # stored only for automatic continuation
    via_path: bool = False              # the client named it in the URL
    rotated: bool = False               # already moved to a fresh chat after an overflow
    abandoned: tuple[str, str] | None = None   # (account, chat id) left behind by a rebuild
    lock: asyncio.Lock | None = field(default=None, repr=False)

    def rebuild(self, req: ChatRequest) -> None:
        """Start a fresh upstream chat from the stored transcript (owner account unusable)."""
        old = [message_of(row) for row in self.existing.transcript]
        self.prompt = build_prompt(req, old + self.new_messages)
        if self.chat_id and self.owner and self.abandoned is None:
            self.abandoned = (self.owner, self.chat_id)
        self.chat_id = self.parent_id = self.owner = None
        self.rebuilt = True


class Conversations:
    def __init__(self, repo: ConversationRepo, *, ttl_seconds: float, auto_ttl_seconds: float,
                 locks: ConversationLocks | None = None):
        self.repo = repo
        self.ttl = ttl_seconds
        self.auto_ttl = auto_ttl_seconds
        self.locks = locks or LocalLocks()     # shared ones serialize turns across replicas

    def lock_for(self, scope: str, cid: str):
        return self.locks.lock_for(scope, cid)

    async def plan(self, req: ChatRequest, scope: str, path_id: str | None) -> Plan:
        if path_id is not None:
            plan = await self._explicit(req, scope, path_id, create=True)
            plan.via_path = True
            return plan
        cid = req.conversation_id
        if cid is not None and cid.strip() not in NEW_IDS:
            return await self._explicit(req, scope, check_id(cid.strip()), create=False)
        if cid is not None:      # "none": a new conversation the client will continue by id
            return self._new(req, "conv-" + secrets.token_hex(16), self.ttl)
        if self.auto_ttl <= 0:
            return Plan(conv_id=None, prompt=build_prompt(req, req.messages),
                        new_messages=req.messages)
        return await self._automatic(req, scope)

    def _new(self, req: ChatRequest, cid: str, ttl: float, lock=None, auto: bool = False) -> Plan:
        return Plan(conv_id=cid, prompt=build_prompt(req, req.messages),
                    new_messages=req.messages, ttl=ttl, lock=lock, auto=auto)

    async def _explicit(self, req, scope, cid, *, create: bool) -> Plan:
        lock = self.lock_for(scope, cid)
        await lock.acquire()        # released by the chat service when the turn ends
        try:
            conv = await self.repo.get(scope, cid)
            if conv is None:
                if not create:
                    raise NotFound(f"no conversation '{cid}' for this caller; send "
                                   "conversation_id \"none\" to start one", param="conversation_id",
                                   code="conversation_not_found")
                return self._new(req, cid, self.ttl, lock)
            plan = self._continue(req, conv, lock)
            plan.ttl = self.ttl         # named by the client now: kept like any conversation
            return plan
        except BaseException:
            lock.release()
            raise

    async def _automatic(self, req: ChatRequest, scope: str) -> Plan:
        # A history ending in an assistant turn (a prefill) is no new turn of a stored chat:
        # it is answered in a chat of its own, not refused.
        ends_new = req.messages[-1].role in ("user", "tool")
        conv = await self.repo.by_digest(scope, prefix_digests(req.messages)) if ends_new \
            else None
        if conv is not None:
            lock = self.lock_for(scope, conv.id)
            await lock.acquire()    # released by the chat service when the turn ends
            try:
                # Another turn may have moved the conversation on while we waited.
                fresh = await self.repo.get(scope, conv.id)
                if fresh is not None and fresh.digest == conv.digest:
                    plan = self._continue(req, fresh, lock)
                    # Each answer gets its own id (clients key messages by it); the row moves on.
                    plan.conv_id, plan.replaces = "chatcmpl-" + secrets.token_hex(16), fresh.id
                    plan.auto = fresh.auto
                    return plan
            except BaseException:
                lock.release()
                raise
            lock.release()
        return self._new(req, "chatcmpl-" + secrets.token_hex(16), self.auto_ttl, auto=True)

    def _continue(self, req: ChatRequest, conv: Conversation, lock) -> Plan:
        known = len(conv.transcript)
        if transcript_of(req.messages[:known]) == conv.transcript:
            new = req.messages[known:]      # the client resent the history: skip what we know
        else:
            new = req.messages              # the client sent only the new turn(s)
        if not new or new[-1].role not in ("user", "tool"):
            raise InvalidRequest("the conversation already holds these messages; send a new "
                                 "user turn", param="messages", code="nothing_new")
        history = [message_of(row) for row in conv.transcript]
        prompt = build_prompt(req, new, history=history, told_tools=conv.tools_digest)
        return Plan(conv_id=conv.id, prompt=prompt, new_messages=new, existing=conv,
                    chat_id=conv.chat_id, parent_id=conv.parent_id, owner=conv.account,
                    ttl=conv.ttl_seconds, lock=lock)

    async def save(self, plan: Plan, req: ChatRequest, scope: str, account: str, chat_id: str,
                   message_id: str | None, answer: Message) -> None:
        old = plan.existing.transcript if plan.existing else []
        transcript = old + transcript_of(plan.new_messages) + [row_of(answer)]
        # A turn that sent no contract leaves the chat knowing the one it knew.
        told = tools_digest(req.tools) or (
            plan.existing.tools_digest if plan.existing and not plan.rebuilt else None)
        now = time.time()
        await self.repo.put(Conversation(
            scope=scope, id=plan.conv_id, account=account, chat_id=chat_id,
            parent_id=message_id or plan.parent_id, transcript=transcript,
            digest=digest(transcript), model=req.model, ttl_seconds=plan.ttl,
            created_at=plan.existing.created_at if plan.existing else now, updated_at=now,
            auto=plan.auto, tools_digest=told))
        if plan.replaces and plan.replaces != plan.conv_id:
            await self.repo.delete(scope, plan.replaces)
