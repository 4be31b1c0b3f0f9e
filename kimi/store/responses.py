"""Stored Responses-API answers: the response object a client may fetch again, and the
canonical transcript a later `previous_response_id` continues from.

The interface is the four methods of ResponseRepo; any store (SQLite here) provides them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from .sqlite import Store

COLUMNS = "scope, id, body, transcript, created_at, expires_at"


@dataclass
class StoredResponse:
    scope: str                  # the caller, as conversations are scoped
    id: str                     # resp_...
    body: dict                  # the response object as the client received it
    transcript: list            # conversation rows up to and including this answer
    created_at: float
    expires_at: float

    @classmethod
    def of_row(cls, row) -> StoredResponse:
        """From a row of the responses table (SQLite or PostgreSQL), JSON columns parsed."""
        return cls(row[0], row[1], orjson.loads(row[2]), orjson.loads(row[3]), row[4], row[5])


class ResponseRepo:
    def __init__(self, store: Store):
        self.store = store

    async def get(self, scope: str, rid: str) -> StoredResponse | None:
        row = await self.store.fetchone(
            f"SELECT {COLUMNS} FROM responses WHERE scope = ? AND id = ? AND expires_at >= ?",
            (scope, rid, time.time()))
        if row is None:
            return None
        return StoredResponse.of_row(row)

    async def put(self, r: StoredResponse) -> None:
        await self.store.execute(
            f"INSERT OR REPLACE INTO responses ({COLUMNS}) VALUES (?,?,?,?,?,?)",
            (r.scope, r.id, orjson.dumps(r.body).decode(), orjson.dumps(r.transcript).decode(),
             r.created_at, r.expires_at))

    async def delete(self, scope: str, rid: str) -> bool:
        return await self.store.execute(
            "DELETE FROM responses WHERE scope = ? AND id = ?", (scope, rid)) > 0

    async def purge(self, now: float | None = None) -> int:
        return await self.store.execute("DELETE FROM responses WHERE expires_at < ?",
                                        (now or time.time(),))
