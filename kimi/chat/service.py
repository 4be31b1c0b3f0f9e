"""Kimi chats for the turns of every dialect: account choice, conversation continuation,
failover before the first byte, follow-ups in the same chat, and cleanup of whatever a turn
leaves upstream. The turn itself (shaping, tools, commit, usage) is kimi.chat.turn."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from ..canonical.events import FLUSH, ReasoningDelta, TextDelta
from ..canonical.request import ChatRequest, Trace
from ..errors import GatewayError, NotFound, RateLimited, UpstreamUnavailable
from ..upstream.accounts import DEAD, Account, AccountPool
from ..upstream.decode import UpstreamAuthError
from ..upstream.kimi import KimiUpstream, Reply
from .conversations import Conversations, check_id
from .turn import Turn

log = logging.getLogger("kimi.chat")

CONTENT = (TextDelta, ReasoningDelta)
MAX_ATTEMPTS = 3


class ChatService:
    def __init__(self, pool: AccountPool, upstream: KimiUpstream, conversations: Conversations,
                 *, attachments=None, counter=None, delete_chats: bool = True,
                 overflow: str = "error", retries: int = 1, think_tags: bool = False,
                 count_usage: bool = False):
        self.pool = pool
        self.upstream = upstream
        self.attachments = attachments  # AttachmentService: downloads once per turn
        self.counter = counter          # TokenCounter: usage and the max_tokens cap
        self.conversations = conversations
        self.delete_chats = delete_chats
        self.overflow = overflow        # "error" or "rotate" on context overflow
        self.retries = retries          # corrective follow-ups per turn (tools, JSON output)
        self.think_tags = think_tags    # reasoning as <think>...</think> inside the content
        # Count every turn's usage, also when the client did not ask for it (a stream without
        # include_usage): the console's per-key totals need it.
        self.count_usage = count_usage
        self._background: set[asyncio.Task] = set()

    def accounts_for(self, client_tokens: list[str] | None) -> list[Account]:
        if client_tokens:
            return self.pool.for_client_tokens(client_tokens)
        return self.pool.accounts

    async def turn(self, req: ChatRequest, *, scope: str, client_tokens: list[str],
                   path_id: str | None, trace: Trace) -> Turn:
        """A turn, to be used as `async with`: it holds its conversation's lock. `scope`: the
        caller's conversation namespace (web/auth.py Caller.scope)."""
        accounts = self.accounts_for(client_tokens)
        if path_id is not None:
            check_id(path_id, param="conversation_id (URL)")
        plan = await self.conversations.plan(req, scope, path_id)
        if plan.owner is not None:
            owner = self.pool.find(accounts, plan.owner)
            if owner is None or owner.state == DEAD:
                plan.rebuild(req)
        return Turn(self, req, scope, accounts, plan, trace)

    def stream(self, turn: Turn) -> AsyncIterator:
        """The raw events of a turn's first answer. Fails over to another account on a
        retryable error as long as nothing has been yielded that a client could have seen."""
        if self.attachments is None or not any(m.attachments for m in turn.plan.new_messages):
            return self._attempts(turn, set())
        return self._with_attachments(turn)

    async def _with_attachments(self, turn: Turn) -> AsyncIterator:
        # Downloads happen once per turn and hold no account's stream slot meanwhile.
        turn.blobs = await self.attachments.gather(turn.req, turn.plan.new_messages)
        try:
            async with aclosing(self._attempts(turn, set())) as events:
                async for ev in events:
                    yield ev
        finally:
            self.attachments.close_all(turn.blobs)

    async def follow_up(self, turn: Turn, prompt: str) -> AsyncIterator:
        """A further message in the chat the turn's answer is in (parent: that answer), on
        the same account, e.g. a corrective request for a tool call."""
        account = await self.pool.acquire([turn.account])
        try:
            async with aclosing(self._answer(account, turn, prompt, turn.chat_id,
                                             turn.message_id)) as events:
                async for ev in events:
                    yield ev
        except GatewayError as e:
            self._note_failure(account, e)
            raise self._for_client(account, e) from None
        finally:
            await self.pool.release(account)

    async def _attempts(self, turn: Turn, tried: set[str]) -> AsyncIterator:
        plan = turn.plan
        while True:
            owner = self.pool.find(turn.accounts, plan.owner)
            candidates = [owner] if owner is not None else turn.accounts
            account = await self.pool.acquire(candidates, exclude=tried)
            turn.account = account
            turn.trace.account = account.alias
            sent_content = refreshed = False
            try:
                while True:
                    sent = False
                    try:
                        # aclosing: a consumer that stops early (stop sequence, max_tokens, a
                        # client gone) closes the turn now, so cancel and delete do not wait
                        # for the GC.
                        async with aclosing(self._answer(account, turn, plan.prompt,
                                                         plan.chat_id, plan.parent_id,
                                                         turn.blobs)) as events:
                            async for ev in events:
                                if not sent_content:
                                    sent = sent or ev is not FLUSH
                                    sent_content = type(ev) in CONTENT
                                yield ev
                        return
                    except UpstreamAuthError:
                        # Kimi: an expired token shows as HTTP 401 or an `unauthenticated`
                        # end-stream frame, before any chat exists; one refresh and one retry
                        # are safe (nothing was posted). After output, a retry would post the
                        # prompt and repeat text.
                        if refreshed or account.refresh_token is None or sent:
                            raise
                    await self.upstream.refresh(account)
                    refreshed = True
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
            plan.rebuild(turn.req)
            plan.rotated = True         # once: a turn too long by itself is an error
            tried.discard(turn.account.alias)
            turn.trace.note = "context-rotated"
            return True
        if not (e.retryable or isinstance(e, UpstreamAuthError)):
            return False
        if len(tried) >= min(MAX_ATTEMPTS, len(turn.accounts)):
            return False
        if plan.chat_id is not None:
            plan.rebuild(turn.req)      # the owning account failed: rebuild elsewhere
        return True

    @staticmethod
    def _for_client(account: Account, e: GatewayError) -> GatewayError:
        if isinstance(e, UpstreamAuthError) and account.origin == "config":
            # The caller's credentials are fine; the gateway's account is not.
            return UpstreamUnavailable(f"Kimi account {account.alias} is unusable: {e.message}",
                                       code="account_dead")
        return e

    async def _answer(self, account: Account, turn: Turn, prompt: str, chat_id: str | None,
                      parent_id: str | None, blobs=()) -> AsyncIterator:
        """One upstream answer. A chat it starts that fails is cleaned up now; a finished or
        cut answer is the turn's to keep or clean up when it ends."""
        reply = Reply()
        try:
            async with aclosing(self.upstream.chat(account, turn.req.spec, prompt, reply,
                                                   chat_id=chat_id, parent_id=parent_id,
                                                   blobs=blobs)) as events:
                async for ev in events:
                    yield ev
        except GeneratorExit:
            # The consumer stopped reading: a stop sequence, max_tokens or a finished tool
            # call cut the answer (the turn may still be committed), or the client went away.
            turn.closed_early = not reply.finished
            turn.took(account, reply, new_chat=chat_id is None)
            if reply.chat_id and reply.message_id and not reply.finished:
                self.spawn(self.upstream.cancel(account, reply.chat_id, reply.message_id))
            raise
        except BaseException:
            if reply.chat_id and chat_id is None and self.delete_chats:
                self.spawn(self._cleanup(account, reply.chat_id, reply.message_id))
            elif reply.chat_id and reply.message_id:
                self.spawn(self.upstream.cancel(account, reply.chat_id, reply.message_id))
            raise
        turn.took(account, reply, new_chat=chat_id is None)

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

    async def _cleanup(self, account: Account, chat_id: str, unfinished_message: str | None):
        """Cancel an unfinished answer, then delete the chat: nothing is left in the account."""
        if unfinished_message:
            await self.upstream.cancel(account, chat_id, unfinished_message)
        await self.upstream.delete_chat(account, chat_id)

    def cleanup_later(self, account: Account, chat_id: str) -> None:
        self.spawn(self._cleanup(account, chat_id, None))

    async def delete_abandoned(self, alias: str, chat_id: str) -> None:
        account = self.pool.by_alias(alias)
        if account is not None and account.state != DEAD and self.delete_chats:
            await self.delete_chat(account, chat_id)

    async def delete_chat(self, account: Account, chat_id: str) -> None:
        await self.upstream.delete_chat(account, chat_id)

    def spawn(self, coro) -> None:
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
        live = await self.upstream.check(account)
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
