"""One chat turn through Kimi: account choice, conversation continuation, failover before the
first byte, and cleanup of whatever the turn leaves upstream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from ..canonical.events import FLUSH, Finish, ReasoningDelta, TextDelta
from ..canonical.request import ChatRequest, Trace
from ..errors import GatewayError, NotFound, RateLimited, UpstreamUnavailable
from ..upstream.accounts import DEAD, Account, AccountPool
from ..upstream.auth import check_live
from ..upstream.client import CANCEL_PATH, DELETE_PATH, KimiClient
from ..upstream.decode import StreamDecoder, UpstreamAuthError
from ..upstream.payload import build_chat_payload
from .conversations import Conversations, Plan, check_id

log = logging.getLogger("kimi.chat")

CONTENT = (TextDelta, ReasoningDelta)
MAX_ATTEMPTS = 3


class Turn:
    """One request's turn. Use as `async with service.turn(...) as turn`: iterate
    `turn.events()`, then `await turn.commit(content)` with the content the client was sent,
    before telling the client it is done; the conversation lock is released on exit."""

    def __init__(self, service: ChatService, req: ChatRequest, scope: str,
                 accounts: list[Account], plan: Plan, trace: Trace):
        self.service, self.req, self.scope, self.accounts = service, req, scope, accounts
        self.plan, self.trace = plan, trace
        self.account: Account | None = None
        self.chat_id: str | None = None
        self.message_id: str | None = None
        self.finished = False
        self.closed_early = False       # cut on purpose (stop, max_tokens) or client gone
        self.blobs: list = []           # this turn's attachments, fetched once
        self.committed = False

    @property
    def conversation_id(self) -> str | None:
        return self.plan.conv_id

    def events(self) -> AsyncIterator:
        return self.service._stream(self)

    async def commit(self, answer: str) -> None:
        """Store the turn in its conversation (a no-op for a stateless turn)."""
        plan = self.plan
        if plan.conv_id is None or not (self.finished or self.closed_early) or self.chat_id is None:
            return
        await self.service.conversations.save(plan, self.scope, self.req.model,
                                              self.account.alias, self.chat_id,
                                              self.message_id, answer)
        self.committed = True
        if plan.abandoned:      # the chat this conversation lived in before a rebuild
            self.service._spawn(self.service.delete_abandoned(*plan.abandoned))

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        plan = self.plan
        if plan.conv_id and (self.finished or self.closed_early) and self.chat_id \
                and not self.committed and plan.chat_id is None and self.service.delete_chats:
            # A new chat whose answer never reached the client: do not leave it behind.
            self.service._spawn(self.service._cleanup(self.account, self.chat_id, None))
        if plan.lock is not None:
            plan.lock.release()


class ChatService:
    def __init__(self, pool: AccountPool, client: KimiClient, tokens, conversations: Conversations,
                 *, attachments=None, delete_chats: bool = True, overflow: str = "error"):
        self.pool = pool
        self.attachments = attachments  # AttachmentService: uploads files once per account
        self.client = client
        self.tokens = tokens            # TokenManager: a live access token for an account
        self.conversations = conversations
        self.delete_chats = delete_chats
        self.overflow = overflow        # "error" or "rotate" on context overflow
        self._background: set[asyncio.Task] = set()

    def accounts_for(self, client_tokens: list[str] | None) -> list[Account]:
        if client_tokens:
            return self.pool.for_client_tokens(client_tokens)
        return self.pool.accounts

    async def turn(self, req: ChatRequest, *, scope: str, client_tokens: list[str],
                   path_id: str | None, trace: Trace) -> Turn:
        """`scope`: the caller's conversation namespace (web/auth.py Caller.scope)."""
        accounts = self.accounts_for(client_tokens)
        if path_id is not None:
            check_id(path_id, param="conversation_id (URL)")
        plan = await self.conversations.plan(req, scope, path_id)
        if plan.owner is not None:
            owner = next((a for a in accounts if a.alias == plan.owner), None)
            if owner is None or owner.state == DEAD:
                plan.rebuild()
        return Turn(self, req, scope, accounts, plan, trace)

    async def _stream(self, turn: Turn) -> AsyncIterator:
        """Canonical events for one turn. Fails over to another account on a retryable error
        as long as nothing has been yielded that a client could have seen."""
        plan, tried = turn.plan, set()
        if self.attachments is not None:
            # Downloads happen once per turn and hold no account's stream slot meanwhile.
            turn.blobs = await self.attachments.gather(turn.req, plan.new_messages)
        try:
            async with aclosing(self._attempts(turn, tried)) as events:
                async for ev in events:
                    yield ev
        finally:
            if self.attachments is not None:
                self.attachments.close_all(turn.blobs)

    async def _attempts(self, turn: Turn, tried: set[str]) -> AsyncIterator:
        plan = turn.plan
        while True:
            candidates = [a for a in turn.accounts if a.alias == plan.owner] or turn.accounts
            account = await self.pool.acquire(candidates, exclude=tried)
            turn.account = account
            turn.trace.account = account.alias
            sent_content = False
            try:
                # aclosing: a consumer that stops early (stop sequence, max_tokens, a client
                # gone) closes the turn now, so cancel and delete do not wait for the GC.
                async with aclosing(self._turn_with_refresh(account, turn)) as events:
                    async for ev in events:
                        if not sent_content and type(ev) in CONTENT:
                            sent_content = True
                        yield ev
                return
            except GatewayError as e:
                self._note_failure(account, e)
                tried.add(account.alias)
                if sent_content or not self._recover(turn, e, tried):
                    raise self._for_client(account, e) from None
                log.info("retrying turn away from %s: %s", account.alias, e.code)
            finally:
                await self.pool.release(account)

    def _recover(self, turn: Turn, e: GatewayError, tried: set[str]) -> bool:
        """Before any content: can this turn go on another way? Adjusts the plan if so."""
        plan = turn.plan
        if (e.code == "context_length_exceeded" and self.overflow == "rotate" and plan.existing
                and not plan.rotated):
            plan.existing.transcript = plan.existing.transcript[-6:]   # recent turns only
            plan.rebuild()
            plan.rotated = True         # once: a turn too long by itself is an error
            tried.discard(turn.account.alias)
            turn.trace.note = "context-rotated"
            return True
        if not (e.retryable or isinstance(e, UpstreamAuthError)):
            return False
        if len(tried) >= min(MAX_ATTEMPTS, len(turn.accounts)):
            return False
        if plan.chat_id is not None:
            plan.rebuild()          # the owning account failed: rebuild elsewhere
        return True

    @staticmethod
    def _for_client(account: Account, e: GatewayError) -> GatewayError:
        if isinstance(e, UpstreamAuthError) and account.origin == "config":
            # The caller's credentials are fine; the gateway's account is not.
            return UpstreamUnavailable(f"Kimi account {account.alias} is unusable: {e.message}",
                                       code="account_dead")
        return e

    async def _turn_with_refresh(self, account: Account, turn: Turn):
        """Kimi: an expired token shows as HTTP 401 or an `unauthenticated` end-stream frame,
        before any chat exists; one refresh and one retry are safe (nothing was posted)."""
        sent = False
        try:
            async with aclosing(self._upstream(account, turn)) as events:
                async for ev in events:
                    sent = sent or ev is not FLUSH
                    yield ev
            return
        except UpstreamAuthError:
            if account.refresh_token is None or sent:
                raise       # after output, a retry would post the prompt and repeat text
        await self.tokens.refresh(account)
        async with aclosing(self._upstream(account, turn)) as events:
            async for ev in events:
                yield ev

    async def _upstream(self, account: Account, turn: Turn) -> AsyncIterator:
        plan = turn.plan
        token = await self.tokens.access_token(account)
        headers = self.client.headers(token, "application/connect+json")
        file_ids = ()
        if self.attachments is not None:
            # Files are per account: uploaded (or found already uploaded) on this one.
            file_ids = await self.attachments.file_ids(account, self.pool.session(account),
                                                       token, turn.blobs)
        payload = build_chat_payload(turn.req.spec, plan.prompt, chat_id=plan.chat_id,
                                     parent_id=plan.parent_id, file_ids=file_ids)
        decoder = StreamDecoder()
        finished = closed = False
        try:
            async for frames in self.client.chat(self.pool.session(account), headers, payload):
                for frame in frames:
                    for ev in decoder.decode(frame):
                        yield ev
                yield FLUSH
            finished = True
            turn.chat_id, turn.message_id, turn.finished = decoder.chat_id, decoder.message_id, True
            yield Finish(decoder.finish_reason, decoder.finish_message)
        except GeneratorExit:
            # The consumer stopped reading: a stop sequence or max_tokens cut the answer (the
            # turn may still be committed with what was sent), or the client went away.
            closed = not finished
            turn.chat_id, turn.message_id = decoder.chat_id, decoder.message_id
            turn.closed_early = closed
            raise
        finally:
            new_chat = plan.chat_id is None
            keep = plan.conv_id is not None and (finished or closed or not new_chat)
            if decoder.chat_id and self.delete_chats and not keep:
                self._spawn(self._cleanup(account, decoder.chat_id,
                                          None if finished else decoder.message_id))
            elif decoder.chat_id and not finished and decoder.message_id:
                self._spawn(self._cancel(account, decoder.chat_id, decoder.message_id))

    def _note_failure(self, account: Account, e: GatewayError) -> None:
        if isinstance(e, UpstreamAuthError):
            account.mark_dead(f"Kimi rejected the token ({e.code})")
        elif isinstance(e, RateLimited):
            # A 429 says how long itself; an overload without a number cools in proportion.
            seconds = account.rate_limited(e.retry_after, f"rate limited ({e.code})")
            e.retry_after = max(1, round(seconds))      # the client's Retry-After
        elif e.retryable:
            # A 5xx or a cut stream: prefer other accounts for a while, but do not bench
            # this one: a lone account must not sit out for one failure.
            account.avoid(30, f"upstream failure ({e.code})")
        # A paywall (402) is about the requested mode, not the account: no cooldown, no retry.

    async def _quiet_unary(self, account: Account, path: str, body: dict, what: str) -> None:
        """A clean-up call: a failure is logged (no ids, no text), never raised."""
        try:
            token = await self.tokens.access_token(account)
            await self.client.unary(self.pool.session(account), token, path, body)
        except GatewayError as e:
            log.warning("could not %s on %s: %s", what, account.alias, e.code or type(e).__name__)

    async def _cancel(self, account: Account, chat_id: str, message_id: str) -> None:
        await self._quiet_unary(account, CANCEL_PATH, {"chat_id": chat_id, "message_id": message_id},
                                "cancel an answer")

    async def _cleanup(self, account: Account, chat_id: str, unfinished_message: str | None):
        """Cancel an unfinished answer, then delete the chat: nothing is left in the account."""
        if unfinished_message:
            await self._cancel(account, chat_id, unfinished_message)
        await self.delete_chat(account, chat_id)

    async def delete_abandoned(self, alias: str, chat_id: str) -> None:
        account = self.pool.by_alias(alias)
        if account is not None and account.state != DEAD and self.delete_chats:
            await self.delete_chat(account, chat_id)

    async def delete_chat(self, account: Account, chat_id: str) -> None:
        await self._quiet_unary(account, DELETE_PATH, {"chat_id": chat_id}, "delete a chat")

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let cleanup calls finish (shutdown, and tests that check deletion)."""
        deadline = time.monotonic() + timeout
        while self._background and time.monotonic() < deadline:
            await asyncio.wait(set(self._background), timeout=deadline - time.monotonic())

    async def check_token(self, token: str) -> bool:
        """Seed endpoint /token/check: can this token talk to Kimi right now?"""
        account = self.pool.for_client_tokens([token])[0]
        live = await check_live(self.tokens, account, self.client, self.pool.session(account))
        if not live:
            self.pool.forget_client_token(token)
        return live

    def account_status(self) -> list[dict]:
        return [a.status() for a in self.pool.all_accounts()]

    # --- stored conversations -------------------------------------------------------------

    async def list_conversations(self, scope: str) -> list[dict]:
        return [c.public() for c in await self.conversations.repo.list(scope)]

    async def get_conversation(self, scope: str, cid: str) -> dict:
        conv = await self.conversations.repo.get(scope, cid)
        if conv is None:
            raise _not_found(cid)
        return conv.public(with_transcript=True)

    async def delete_conversation(self, scope: str, cid: str) -> None:
        conv = await self.conversations.repo.get(scope, cid)
        if conv is None:
            raise _not_found(cid)
        await self._forget(conv)

    async def purge_expired(self) -> int:
        now = time.time()
        expired = await self.conversations.repo.expired(now)
        for conv in expired:
            await self._forget(conv, expired_at=now)
        return len(expired)

    async def _forget(self, conv, expired_at: float | None = None) -> None:
        # Under the conversation's lock: a turn in flight finishes (and stores) first.
        async with self.conversations.lock_for(conv.scope, conv.id):
            conv = await self.conversations.repo.get(conv.scope, conv.id)
            if conv is None or (expired_at and conv.updated_at + conv.ttl_seconds >= expired_at):
                return      # gone already, or a turn just used it
            account = self.pool.by_alias(conv.account)
            if account is not None and conv.chat_id and account.state != DEAD:
                await self.delete_chat(account, conv.chat_id)
            await self.conversations.repo.delete(conv.scope, conv.id)


def _not_found(cid: str) -> NotFound:
    return NotFound(f"no conversation '{cid}' for this caller", code="conversation_not_found")
