"""Kimi accounts and the pool that hands them out.

An account is one Kimi login: its current access token, its ClientSession and its health.
The pool picks the least-busy healthy account (round-robin among equals), limits streams per
account, and makes a request wait a bounded time when all are busy. For the configured accounts
the pick does not scan the pool (see ready.py); a client's own few tokens are simply scanned.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import aiohttp

from ..errors import RateLimited, Unauthorized, UpstreamUnavailable
from .ready import ReadyAccounts
from .tokens import alias_for, expires_at, key_for, token_kind

HEALTHY, COOLING, DEAD = "healthy", "cooling", "dead"
# A limit without Retry-After (an in-stream overload) is weak evidence: the first cools the
# account for a moment, each further one soon after doubles it, up to the cap.
FIRST_COOLDOWN, MAX_COOLDOWN = 2.0, 60.0
# A request waits this long for the last cooling account rather than fail at once.
COOLING_WAIT = 5.0


class Account:
    def __init__(self, token: str, *, origin: str = "config"):
        self.alias = alias_for(token)         # a label for logs and status pages
        self.key = key_for(token)             # the identity: stored tokens, refreshes
        self.origin = origin                # "config" or "client" (pass-through)
        self.kind = token_kind(token)
        self.access_token: str | None = token if self.kind == "access" else None
        self.refresh_token: str | None = token if self.kind == "refresh" else None
        self.in_flight = 0
        self.state = HEALTHY
        self.cooldown_until = 0.0
        self.avoid_until = 0.0
        self.last_error: str | None = None
        self.session: aiohttp.ClientSession | None = None
        self.last_used = 0.0
        self.refreshes = 0
        self.refreshed_at: float | None = None     # wall clock of the last token refresh
        self.restored = False               # stored (rotated) tokens looked up yet?
        self.refused_token: str | None = None   # a refresh token Kimi refused: not sent again
        self.last_strike = 0.0              # when a limit without Retry-After last hit
        self.strike_seconds = 0.0           # ... and how long it cooled the account

    @property
    def expires_at(self) -> float | None:
        return expires_at(self.access_token) if self.access_token else None

    def usable(self, now: float) -> bool:
        if self.state == COOLING and now >= self.cooldown_until:
            self.state = HEALTHY
        return self.state == HEALTHY

    def mark_dead(self, reason: str) -> None:
        self.state, self.last_error = DEAD, reason

    def avoid(self, seconds: float, reason: str) -> None:
        """A soft mark after a transient failure: other accounts go first meanwhile."""
        self.avoid_until, self.last_error = time.time() + seconds, reason

    def rate_limited(self, retry_after: float | None, reason: str) -> float:
        """Cools the account in proportion to the evidence; returns the seconds. Kimi's own
        Retry-After is taken as given; without one, strikes close together escalate and a
        lone one costs FIRST_COOLDOWN."""
        now = time.time()
        if retry_after:
            seconds = float(retry_after)
        else:
            recent = now - self.last_strike < 2 * self.strike_seconds
            self.strike_seconds = min(MAX_COOLDOWN, self.strike_seconds * 2) if recent \
                else FIRST_COOLDOWN
            self.last_strike, seconds = now, self.strike_seconds
        self.cool_down(seconds, reason)
        return seconds

    def cool_down(self, seconds: float, reason: str) -> None:
        self.state, self.last_error = COOLING, reason
        self.cooldown_until = max(self.cooldown_until, time.time() + seconds)

    def status(self) -> dict:
        return {"id": self.alias, "origin": self.origin, "state": self.state,
                "cooldown_until": self.cooldown_until if self.state == COOLING else None,
                "in_flight": self.in_flight, "last_error": self.last_error,
                "token_kind": self.kind, "access_expires_at": self.expires_at}


class AccountPool:
    def __init__(self, tokens: tuple[str, ...], new_session, *, max_streams: int = 1,
                 queue_timeout: float = 30.0, max_client_accounts: int = 1024):
        self.accounts = [Account(t) for t in dict.fromkeys(tokens)]
        self._configured = {t: a for t, a in zip(dict.fromkeys(tokens), self.accounts)}
        self._client_accounts: dict[str, Account] = {}
        self._aliases = {a.alias: a for a in self.accounts}     # configured, then clients'
        self._ready = ReadyAccounts(self.accounts, max_streams)
        self._new_session = new_session
        self.max_streams = max_streams
        self.queue_timeout = queue_timeout
        self._max_client_accounts = max_client_accounts
        self._turn = itertools.count()
        self._freed = asyncio.Condition()
        self._closing: set[asyncio.Task] = set()

    def spread(self, rng) -> None:
        """A random round-robin order for this process (several replicas share the accounts)."""
        self._ready.shuffle(rng)

    @property
    def refresh_count(self) -> int:
        return sum(a.refreshes for a in self.all_accounts())

    def by_alias(self, alias: str) -> Account | None:
        return self._aliases.get(alias)

    def find(self, candidates: Sequence[Account], alias: str | None) -> Account | None:
        """The account `alias` if it is one of `candidates`, without a scan of the pool."""
        if alias is None:
            return None
        if candidates is self.accounts:
            found = self._aliases.get(alias)
            return found if found is not None and found.origin == "config" else None
        return next((a for a in candidates if a.alias == alias), None)

    def add(self, account: Account) -> None:
        """A server account added while running (the operator console)."""
        if account not in self.accounts:
            self.accounts.append(account)
            self._aliases[account.alias] = account
            self._ready.add(account)

    def remove(self, account: Account) -> None:
        """A server account taken out while running (disabled or removed); streams in
        flight on it finish."""
        if account in self.accounts:
            self.accounts.remove(account)
        if self._aliases.get(account.alias) is account:
            del self._aliases[account.alias]
        self._ready.remove(account)

    def all_accounts(self) -> list[Account]:
        return self.accounts + list(self._client_accounts.values())

    def for_client_tokens(self, tokens: list[str]) -> list[Account]:
        """Pass-through credentials: one cached Account per distinct token; a token that is
        also configured on the server is that account, so the one-stream limit holds (Kimi
        refuses a login's second concurrent stream). Tokens are matched exactly: their claims
        are not verified here, so they never vouch for another account."""
        out = []
        for token in tokens:
            acct = self._client_accounts.get(token) or self._configured.get(token)
            if acct is None:
                if len(self._client_accounts) >= self._max_client_accounts:
                    self._evict_idle_client_account()
                acct = self._client_accounts[token] = Account(token, origin="client")
                self._aliases.setdefault(acct.alias, acct)
            if acct not in out:
                out.append(acct)
        return out

    def known_accounts_of(self, tokens) -> list[Account]:
        """The accounts already made for these tokens (none is made: a look-up only)."""
        found = (self._client_accounts.get(t) or self._configured.get(t) for t in tokens)
        return list(dict.fromkeys(a for a in found if a is not None))

    def forget_client_token(self, token: str) -> None:
        """Drop a pass-through account that a /token/check rejected, and close its session,
        unless a chat is using it or has used it."""
        acct = self._client_accounts.get(token)
        if acct is not None and not acct.in_flight and (acct.state == DEAD or not acct.last_used):
            self._close_later(self._drop_client_account(token))

    def _evict_idle_client_account(self) -> None:
        idle = [(a.last_used, t) for t, a in self._client_accounts.items() if not a.in_flight]
        if idle:
            self._close_later(self._drop_client_account(min(idle)[1]))

    def _close_later(self, acct: Account) -> None:
        if acct.session is not None:
            task = asyncio.get_running_loop().create_task(acct.session.close())
            self._closing.add(task)         # keep it alive until the close is done
            task.add_done_callback(self._closing.discard)

    def _drop_client_account(self, token: str) -> Account:
        acct = self._client_accounts.pop(token)
        if self._aliases.get(acct.alias) is acct:
            del self._aliases[acct.alias]
        return acct

    def session(self, account: Account) -> aiohttp.ClientSession:
        if account.session is None or account.session.closed:
            account.session = self._new_session()
        return account.session

    async def acquire(self, candidates: list[Account], exclude: set[str] = frozenset()) -> Account:
        """The least-busy usable account; waits (bounded) while all are busy."""
        deadline = time.monotonic() + self.queue_timeout
        async with self._freed:
            while True:
                pick = self._pick(candidates, exclude)
                if pick is not None:
                    pick.in_flight += 1
                    pick.last_used = time.time()
                    self._ready.moved(pick, pick.in_flight - 1)
                    return pick
                self._raise_if_hopeless(candidates, exclude)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RateLimited(f"all {len(candidates)} Kimi account(s) are busy; "
                                      f"waited {self.queue_timeout:g}s, try again shortly",
                                      code="accounts_busy", retry_after=1)
                try:
                    await asyncio.wait_for(self._freed.wait(), timeout=min(remaining, 1.0))
                except TimeoutError:
                    pass    # re-check cooldowns that ended meanwhile

    async def release(self, account: Account) -> None:
        account.in_flight -= 1
        self._ready.moved(account, account.in_flight + 1)
        async with self._freed:
            self._freed.notify_all()

    def _pick(self, candidates: list[Account], exclude) -> Account | None:
        if candidates is self.accounts:
            # The ready accounts first; the parked (unwell) ones only when none is, because
            # an avoided account still beats waiting.
            found = self._ready.take(exclude, time.time())
            return found if found is not None else self._scan(self._ready.parked, exclude)
        return self._scan(candidates, exclude)

    def _scan(self, candidates: list[Account], exclude) -> Account | None:
        now = time.time()
        free = [a for a in candidates if a.alias not in exclude and a.usable(now)
                and a.in_flight < self.max_streams]
        if not free:
            return None
        rank = {id(a): (a.avoid_until > now, a.in_flight) for a in free}
        best = min(rank.values())
        free = [a for a in free if rank[id(a)] == best]
        return free[next(self._turn) % len(free)]

    def _raise_if_hopeless(self, candidates: list[Account], exclude) -> None:
        if (candidates is self.accounts
                and len(self._ready.parked) + len(exclude) < len(self.accounts)):
            return      # an account that is neither unwell nor excluded is busy: wait for it
        left = [a for a in candidates if a.alias not in exclude and a.state != DEAD]
        if left:
            # The queue is for busy accounts. When every one is cooling down after an
            # upstream limit, waiting would only hold the client: say when to come back.
            cooling = [a.cooldown_until for a in left if a.state == COOLING]
            if len(cooling) == len(left):
                wait = min(cooling) - time.time()
                if wait <= COOLING_WAIT:
                    return          # soon usable again: the request waits for it
                seconds = max(1, round(wait))   # the message and Retry-After agree
                raise RateLimited(f"every Kimi account is cooling down after upstream limits; "
                                  f"try again in {seconds}s", code="accounts_cooling",
                                  retry_after=seconds)
            return
        if not candidates:
            raise Unauthorized("no Kimi account is configured: set [kimi] tokens or send "
                               "'Authorization: Bearer <kimi token>'", code="no_accounts")
        reasons = "; ".join(sorted({a.last_error or "unusable" for a in candidates}))
        if all(a.origin == "client" for a in candidates):
            raise Unauthorized(f"Kimi rejected the token(s): {reasons}", code="invalid_kimi_token")
        raise UpstreamUnavailable(f"no usable Kimi account: {reasons}", code="no_usable_account")

    async def close(self) -> None:
        if self._closing:
            await asyncio.wait(set(self._closing))
        for acct in self.all_accounts():
            if acct.session is not None:
                await acct.session.close()
