"""The account pool with cluster-wide stream leases in front of it.

The local pool (`kimi.upstream.accounts.AccountPool`) picks an account by its own counters; this
wrapper then takes the account's lease from the `AccountLeases` port, so the one-stream rule
holds across replicas. An account leased by another replica is set aside for this request and
the next one is tried; when all are taken elsewhere the request polls until the queue timeout.
A cooldown found on the lease server is applied locally, and one set here (or an account
found dead) is published there, so every replica sees it. Everything else is the local pool's (delegated).
"""

from __future__ import annotations

import asyncio
import time

from ..errors import GatewayError, RateLimited



class LeasedPool:
    POLL = 0.05
    DEAD_HOLD = 300.0       # an account found dead is skipped by the other replicas this long

    def __init__(self, pool, leases):
        self._pool = pool
        self.leases = leases
        self._held: dict[str, list] = {}

    def __getattr__(self, name):
        return getattr(self._pool, name)

    async def acquire(self, candidates: list, exclude=frozenset()):
        deadline = time.monotonic() + self._pool.queue_timeout
        busy: set[str] = set()      # leased by another replica, for this round
        while True:
            account = await self._local(candidates, set(exclude) | busy, bool(busy), deadline)
            if account is not None:
                if await self._lease(account):
                    return account
                busy.add(account.alias)
                continue
            if time.monotonic() >= deadline:
                raise RateLimited(f"all {len(candidates)} Kimi account(s) are busy; waited "
                                  f"{self._pool.queue_timeout:g}s, try again shortly",
                                  code="accounts_busy", retry_after=1)
            await asyncio.sleep(self.POLL)
            busy.clear()

    async def _local(self, candidates, exclude, polling: bool, deadline: float):
        """An account from the local pool, or None when the caller should poll again."""
        if not any(a.alias not in exclude for a in candidates):
            return None
        wait = self.POLL if polling else max(0.0, deadline - time.monotonic())
        try:
            return await asyncio.wait_for(self._pool.acquire(candidates, exclude), wait)
        except TimeoutError:
            return None
        except GatewayError:
            if polling:     # the rest is unusable, but some are only busy elsewhere
                return None
            raise

    async def _lease(self, account) -> bool:
        try:
            holder = asyncio.current_task()     # the request streaming on this lease
            got = await self.leases.acquire(account.alias, lambda: self._lost(account, holder))
        except BaseException:
            await self._pool.release(account)
            raise
        if isinstance(got, (int, float)):
            await self._pool.release(account)
            if got > 0:
                account.cool_down(got, "cooling down (seen by another replica)")
            return False
        self._held.setdefault(account.alias, []).append(got)
        return True

    async def release(self, account) -> None:
        held = self._held.get(account.alias)
        lease = held.pop() if held else None
        if held == []:
            del self._held[account.alias]
        try:
            wait = account.cooldown_until - time.time()
            if account.state == "cooling" and wait > 0:
                await self.leases.cool_down(account.alias, wait, account.last_error or "")
            elif account.state == "dead":
                # The others would only find out by trying (a refused token, once more).
                await self.leases.cool_down(account.alias, self.DEAD_HOLD,
                                            account.last_error or "dead")
        except GatewayError:
            pass    # the lease server is gone; other replicas find out on their own
        finally:
            if lease is not None:
                await asyncio.shield(lease.release())
            await self._pool.release(account)

    @staticmethod
    def _lost(account, holder: asyncio.Task | None) -> None:
        """The lease could not be renewed: another replica may stream on this account soon,
        so this request's stream stops now. It is cancelled as a client disconnect is: the
        upstream chat is cancelled and cleaned up on the way out. (Closing the account's
        HTTP session would not do: aiohttp does not wake a read in progress on close.)"""
        account.avoid(5, "lost its stream lease")
        if holder is not None and not holder.done():
            holder.cancel()
