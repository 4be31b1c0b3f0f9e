"""One chat turn through Kimi, with failover before the first byte and cleanup afterwards."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from ..canonical.events import Finish, ReasoningDelta, Started, TextDelta
from ..canonical.request import ChatRequest, Trace
from ..errors import GatewayError, PaymentRequired, RateLimited, Unauthorized
from ..upstream.accounts import Account, AccountPool
from ..upstream.client import CANCEL_PATH, DELETE_PATH, KimiClient
from ..upstream.decode import StreamDecoder, UpstreamAuthError
from ..upstream.payload import build_chat_payload
from .prompt import fold_messages

log = logging.getLogger("kimi.chat")

CONTENT = (TextDelta, ReasoningDelta)
MAX_ATTEMPTS = 3


class ChatService:
    def __init__(self, pool: AccountPool, client: KimiClient, tokens, *, delete_chats: bool = True,
                 attachments=None):
        self.pool = pool
        self.client = client
        self.tokens = tokens            # TokenManager: gives a live access token for an account
        self.attachments = attachments  # AttachmentService: message files -> Kimi file ids
        self.delete_chats = delete_chats
        self._background: set[asyncio.Task] = set()

    def accounts_for(self, client_tokens: list[str] | None) -> list[Account]:
        if client_tokens:
            return self.pool.for_client_tokens(client_tokens)
        return self.pool.accounts

    async def stream(self, req: ChatRequest, accounts: list[Account],
                     trace: Trace) -> AsyncIterator:
        """Canonical events for one turn. Fails over to another account on a retryable error
        as long as nothing has been yielded that a client could have seen."""
        prompt = fold_messages(req.messages)
        tried: set[str] = set()
        while True:
            account = await self.pool.acquire(accounts, exclude=tried)
            trace.account = account.alias
            sent_content = False
            try:
                async for ev in self._turn(account, req, prompt):
                    if not sent_content and type(ev) in CONTENT:
                        sent_content = True
                    yield ev
                return
            except GatewayError as e:
                self._note_failure(account, e)
                tried.add(account.alias)
                if sent_content or not e.retryable or len(tried) >= MAX_ATTEMPTS \
                        or len(tried) >= len(accounts):
                    raise
                log.info("failing over from %s: %s", account.alias, e.code)
            finally:
                await self.pool.release(account)

    async def _turn(self, account: Account, req: ChatRequest, prompt: str) -> AsyncIterator:
        token = await self.tokens.access_token(account)
        headers = self.client.headers(token, "application/connect+json")
        file_ids = (await self.attachments.prepare(account, self.pool.session(account), token, req)
                    if self.attachments else ())
        payload = build_chat_payload(req.spec, prompt, file_ids=file_ids)
        decoder = StreamDecoder()
        finished = False
        try:
            async for frame in self.client.chat(self.pool.session(account), headers, payload):
                for ev in decoder.decode(frame):
                    yield ev
            yield Finish(decoder.finish_reason, decoder.finish_message)
            finished = True
        finally:
            if decoder.chat_id and self.delete_chats:
                self._spawn(self._cleanup(account, decoder.chat_id,
                                          None if finished else decoder.message_id))

    def _note_failure(self, account: Account, e: GatewayError) -> None:
        if isinstance(e, UpstreamAuthError):
            account.mark_dead("Kimi rejected the access token (unauthenticated)")
        elif isinstance(e, PaymentRequired):
            account.cool_down(600, "paywall: the requested mode needs a paid plan")
        elif isinstance(e, RateLimited):
            account.cool_down(e.retry_after or 60, f"rate limited ({e.code})")
        elif e.retryable:
            account.cool_down(30, f"upstream failure ({e.code})")

    async def _cleanup(self, account: Account, chat_id: str, unfinished_message: str | None):
        """Cancel an unfinished answer, then delete the chat: nothing is left in the account."""
        session = self.pool.session(account)
        try:
            token = await self.tokens.access_token(account)
            if unfinished_message:
                await self.client.unary(session, token, CANCEL_PATH,
                                        {"chat_id": chat_id, "message_id": unfinished_message})
            await self.client.unary(session, token, DELETE_PATH, {"chat_id": chat_id})
        except GatewayError as e:
            log.warning("could not delete chat on %s: %s", account.alias, e.code or type(e).__name__)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let cleanup calls finish (shutdown, and tests that check deletion)."""
        deadline = time.monotonic() + timeout
        while self._background and time.monotonic() < deadline:
            await asyncio.wait(set(self._background), timeout=deadline - time.monotonic())


class TokenManager:
    """Live access tokens for accounts. Access JWTs are used until they expire."""

    async def access_token(self, account: Account) -> str:
        if account.access_token is None:
            account.mark_dead("a refresh token was given; this build accepts access tokens only")
            raise Unauthorized("this Kimi token is a refresh token; use the kimi-auth cookie "
                               "(an access JWT)", code="refresh_token_unsupported")
        return account.access_token
