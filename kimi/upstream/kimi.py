"""The chat layer's one door to Kimi: stream an answer (with its files uploaded), cancel it,
delete a chat, check a token. Connect framing, payloads, frame decoding, files and access tokens stay behind it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from ..canonical.events import FLUSH, Finish
from ..canonical.request import ModelSpec
from ..errors import GatewayError
from .accounts import Account, AccountPool
from .auth import TokenManager, check_live
from .client import CANCEL_PATH, DELETE_PATH, KimiClient, frame_json
from .decode import StreamDecoder
from .payload import build_chat_payload
from .uploads import FileUploads

log = logging.getLogger("kimi.upstream")


@dataclass(slots=True)
class Reply:
    """What one upstream answer left behind, filled in as it streams."""
    chat_id: str | None = None
    message_id: str | None = None
    finished: bool = False


class KimiUpstream:
    def __init__(self, client: KimiClient, pool: AccountPool, tokens: TokenManager,
                 uploads: FileUploads | None = None):
        self.client, self.pool, self.tokens = client, pool, tokens
        self.uploads = uploads              # a turn's files, uploaded once per Kimi user

    async def chat(self, account: Account, spec: ModelSpec, prompt: str, reply: Reply, *,
                   chat_id: str | None = None, parent_id: str | None = None,
                   blobs=()) -> AsyncIterator:
        """Canonical events of one answer, FLUSH after each network read, Finish last."""
        token = await self.tokens.access_token(account)
        headers = self.client.headers(token, "application/connect+json")
        session = self.pool.session(account)
        file_ids = ()
        if self.uploads is not None and blobs:
            # Files are per account: uploaded (or found already uploaded) on this one.
            file_ids = await self.uploads.file_ids(account, session, token, blobs)
        payload = build_chat_payload(spec, prompt, chat_id=chat_id, parent_id=parent_id,
                                     file_ids=file_ids)
        decoder = StreamDecoder()
        try:
            async with aclosing(self.client.chat(session, headers, payload)) as reads:
                async for frames in reads:
                    for body in frames:
                        frame = frame_json(body)
                        if frame is not None:
                            for ev in decoder.decode(frame):
                                yield ev
                    reply.chat_id, reply.message_id = decoder.chat_id, decoder.message_id
                    yield FLUSH
            reply.finished = True
            yield Finish(decoder.finish_reason, decoder.finish_message)
        finally:
            reply.chat_id, reply.message_id = decoder.chat_id, decoder.message_id

    async def refresh(self, account: Account) -> None:
        await self.tokens.refresh(account)

    async def cancel(self, account: Account, chat_id: str, message_id: str) -> None:
        await self._quiet(account, CANCEL_PATH, {"chat_id": chat_id, "message_id": message_id},
                          "cancel an answer")

    async def delete_chat(self, account: Account, chat_id: str) -> None:
        await self._quiet(account, DELETE_PATH, {"chat_id": chat_id}, "delete a chat")

    async def check(self, account: Account) -> bool:
        return await check_live(self.tokens, account, self.client, self.pool.session(account))

    async def _quiet(self, account: Account, path: str, body: dict, what: str) -> None:
        """A clean-up call: a failure is logged (no ids, no text), never raised."""
        try:
            token = await self.tokens.access_token(account)
            await self.client.unary(self.pool.session(account), token, path, body)
        except GatewayError as e:
            log.warning("could not %s on %s: %s", what, account.alias, e.code or type(e).__name__)
