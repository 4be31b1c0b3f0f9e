"""Conversation rows: which upstream chat and account hold a client's conversation."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from .sqlite import Store

COLUMNS = ("scope, id, account, chat_id, parent_id, transcript, digest, model, ttl_seconds, "
           "created_at, updated_at, auto, tools_digest")


@dataclass
class Conversation:
    scope: str
    id: str
    account: str
    chat_id: str | None
    parent_id: str | None
    transcript: list            # [[role, text], ...]; tool traffic adds a third item
    digest: str
    model: str | None
    ttl_seconds: float
    created_at: float
    updated_at: float
    auto: bool = False          # stored only for automatic continuation of plain requests
    tools_digest: str | None = None     # the tools the upstream chat was told about

    def public(self, with_transcript: bool = False) -> dict:
        out = {"id": self.id, "object": "conversation", "model": self.model,
               "turns": sum(1 for row in self.transcript if row[0] == "user"),
               "created_at": int(self.created_at), "updated_at": int(self.updated_at),
               "expires_at": int(self.updated_at + self.ttl_seconds)}
        if with_transcript:
            out["messages"] = [_public_message(row) for row in self.transcript]
        return out


def _public_message(row: list) -> dict:
    """A transcript row as an OpenAI chat message, tool calls and results included."""
    message = {"role": row[0], "content": row[1]}
    extra = row[2] if len(row) > 2 else {}
    if "calls" in extra:
        message["content"] = row[1] or None
        message["tool_calls"] = [
            {"id": cid, "type": "custom", "custom": {"name": name, "input": args}}
            if kind == "custom" else
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args, kind in extra["calls"]]
    elif "call" in extra:
        message["tool_call_id"] = extra["call"]
    return message


def _row(row) -> Conversation:
    values = list(row)
    values[5] = orjson.loads(values[5])
    values[11] = bool(values[11])
    return Conversation(*values)


class ConversationRepo:
    def __init__(self, store: Store):
        self.store = store

    async def get(self, scope: str, cid: str) -> Conversation | None:
        row = await self.store.fetchone(
            f"SELECT {COLUMNS} FROM conversations WHERE scope = ? AND id = ?", (scope, cid))
        return _row(row) if row else None

    async def by_digest(self, scope: str, digests: list[str]) -> Conversation | None:
        """The most recently used conversation whose transcript digest is one of `digests`."""
        if not digests:
            return None
        # One parameter for the whole list: SQLite takes at most 32766 per statement, and a
        # history can hold more assistant turns than that.
        row = await self.store.fetchone(
            f"SELECT {COLUMNS} FROM conversations WHERE scope = ? AND digest IN "
            "(SELECT value FROM json_each(?)) ORDER BY updated_at DESC LIMIT 1",
            (scope, orjson.dumps(digests).decode()))
        return _row(row) if row else None

    async def put(self, c: Conversation) -> None:
        c.updated_at = time.time()
        await self.store.execute(
            f"INSERT OR REPLACE INTO conversations ({COLUMNS}, expires_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (c.scope, c.id, c.account, c.chat_id, c.parent_id,
             orjson.dumps(c.transcript).decode(), c.digest, c.model, c.ttl_seconds,
             c.created_at, c.updated_at, int(c.auto), c.tools_digest,
             c.updated_at + c.ttl_seconds))

    async def list(self, scope: str) -> list[Conversation]:
        """The caller's named conversations (not the ones kept for automatic continuation)."""
        rows = await self.store.fetchall(
            f"SELECT {COLUMNS} FROM conversations WHERE scope = ? AND auto = 0 "
            "ORDER BY updated_at DESC", (scope,))
        return [_row(r) for r in rows]

    async def delete(self, scope: str, cid: str) -> None:
        await self.store.execute("DELETE FROM conversations WHERE scope = ? AND id = ?", (scope, cid))

    async def expired(self, now: float | None = None) -> list[Conversation]:
        rows = await self.store.fetchall(
            f"SELECT {COLUMNS} FROM conversations WHERE expires_at < ?",
            (now or time.time(),))
        return [_row(r) for r in rows]
