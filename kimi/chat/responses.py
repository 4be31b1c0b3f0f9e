"""Responses-API answers kept for `GET /v1/responses/{id}` and `previous_response_id`.

A stored response holds the canonical transcript of its conversation up to and including
its answer, in the rows kimi.chat.conversations stores. Continuing from it is then the
ordinary automatic continuation: the history it gives back extends the stored Kimi chat (when
that chat is still the latest of the conversation) and only the new input goes upstream; a
fork from an older response, or an expired chat, starts a fresh chat from the whole history.
"""

from __future__ import annotations

import asyncio
import time

from ..canonical.request import Message
from ..store.responses import ResponseRepo, StoredResponse
from .conversations import message_of, transcript_of

WAIT_FOR_SAVE = 10.0    # seconds a lookup waits for the save of a response still streaming


class StoredResponses:
    def __init__(self, repo: ResponseRepo, ttl_seconds: float):
        self.repo = repo
        self.ttl = ttl_seconds
        # Responses whose stream has ended but whose save is still running: a client that
        # continues the moment it read `response.completed` must find them.
        self._saving: dict[tuple[str, str], asyncio.Event] = {}

    def saving(self, scope: str, rid: str) -> None:
        """The response will be saved: lookups wait for save() or abandon()."""
        self._saving[(scope, rid)] = asyncio.Event()

    def abandon(self, scope: str, rid: str) -> None:
        done = self._saving.pop((scope, rid), None)
        if done is not None:
            done.set()

    async def save(self, scope: str, rid: str, body: dict, messages: list[Message]) -> None:
        now = time.time()
        try:
            await self.repo.put(StoredResponse(scope, rid, body, transcript_of(messages),
                                               now, now + self.ttl))
        finally:
            self.abandon(scope, rid)

    async def get(self, scope: str, rid: str) -> StoredResponse | None:
        pending = self._saving.get((scope, rid))
        if pending is not None:
            try:
                await asyncio.wait_for(pending.wait(), WAIT_FOR_SAVE)
            except TimeoutError:
                pass
        return await self.repo.get(scope, rid)

    @staticmethod
    def history(stored: StoredResponse) -> list[Message]:
        return [message_of(row) for row in stored.transcript]

    async def delete(self, scope: str, rid: str) -> bool:
        return await self.repo.delete(scope, rid)

    async def purge_expired(self) -> int:
        return await self.repo.purge()
