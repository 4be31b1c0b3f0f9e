"""Server accounts managed from the console: add (validated against Kimi first), disable,
enable, remove; persisted in the store and live without a restart.

The pool's `accounts` list is what every turn draws from, so attaching or detaching an account
there is the whole switch. A disabled or removed account finishes the streams it has in flight.
Config-file accounts can be disabled (the flag is stored) but not removed: the file would add
them back at the next start, so the console says to edit the file instead. With several
replicas `load` runs again whenever another replica changed the rows (kimi.admin.follow), and
brings this replica's pool to what they say.
"""

from __future__ import annotations

import asyncio
import time

from ..errors import Conflict, GatewayError, InvalidRequest, NotFound
from ..store.admin import ConsoleRepo
from ..upstream.accounts import COOLING, Account, AccountPool
from ..upstream.client import SUBSCRIPTION_PATH
from ..upstream.tokens import alias_for

REFRESH_EVERY = 30.0        # the app's proactive refresh loop period (kimi.app)


class ConsoleAccounts:
    def __init__(self, pool: AccountPool, tokens, client, repo: ConsoleRepo):
        self.pool, self.tokens, self.client, self.repo = pool, tokens, client, repo
        self.config_aliases = {a.alias for a in pool.accounts}
        self.disabled: dict[str, Account] = {}
        self._removed: list[Account] = []       # sessions closed at shutdown
        self._lock = asyncio.Lock()             # one change (or reload) at a time

    async def load(self) -> None:
        """Bring the pool to the stored rows: at start (before any request), and when another
        replica added, disabled, enabled or removed an account."""
        async with self._lock:
            # A row without a token is a flag on a config-file account; for any other alias
            # it is a stale flag (set on a replica that had not yet seen the removal): absent.
            rows = {alias: (token, off) for alias, token, off in await self.repo.accounts()
                    if token is not None or alias in self.config_aliases}
            for account in list(self.pool.accounts) + list(self.disabled.values()):
                if account.alias not in rows and account.alias not in self.config_aliases:
                    self._drop(account)             # removed on another replica
            for alias, (token, disabled) in rows.items():
                account = self._find(alias)
                if account is None:
                    if token is None or alias in self.config_aliases:
                        continue        # a flag on a config account this replica has not
                    account = Account(token)
                    await self.tokens.restore(account)
                    self.pool.add(account)
                self._flag(account, disabled)
            for alias in [a for a in self.disabled if a not in rows]:
                self._flag(self.disabled[alias], False)     # a config account's row is gone

    def _find(self, alias: str) -> Account | None:
        return self.disabled.get(alias) or next(
            (a for a in self.pool.accounts if a.alias == alias), None)

    def _flag(self, account: Account, disabled: bool) -> None:
        if disabled and account.alias not in self.disabled:
            self.pool.remove(account)
            self.disabled[account.alias] = account
        elif not disabled and account.alias in self.disabled:
            self.pool.add(self.disabled.pop(account.alias))

    def _drop(self, account: Account) -> None:
        self.pool.remove(account)
        self.disabled.pop(account.alias, None)
        self._removed.append(account)

    async def add(self, token) -> Account:
        if not isinstance(token, str) or not token.strip():
            raise InvalidRequest("'token' must be a non-empty string", param="token")
        token = token.strip()
        if any(c.isspace() for c in token) or len(token) > 8192:
            raise InvalidRequest("'token' must be one token, without spaces", param="token")
        if self._find(alias_for(token)) is not None:
            raise Conflict("this account is already on the gateway", code="account_exists")
        account = Account(token)
        problem = await self._validate(account)
        if problem is not None:
            if account.session is not None:
                await account.session.close()
            async with self._lock:      # the tokens a refresh stored, unless it was added since
                stored = {alias for alias, _, _ in await self.repo.accounts()}
                if self._find(account.alias) is None and account.alias not in stored:
                    await self.repo.delete_account(account.alias, account.key)
            raise InvalidRequest(f"Kimi did not accept the token: {problem}", param="token",
                                 code="invalid_kimi_token")
        async with self._lock:
            if self._find(account.alias) is not None:     # added meanwhile, here or elsewhere
                if account.session is not None:
                    await account.session.close()
                raise Conflict("this account is already on the gateway", code="account_exists")
            await self.repo.save_account(account.alias, token, False)
            self.pool.add(account)
        return account

    async def _validate(self, account: Account) -> str | None:
        """None when the token can talk to Kimi now; else why not (no token in the text)."""
        try:
            access = await self.tokens.access_token(account)
            await self.client.unary(self.pool.session(account), access, SUBSCRIPTION_PATH, {})
        except GatewayError as e:
            return e.message
        return None

    async def set_disabled(self, alias: str, disabled: bool) -> Account:
        async with self._lock:
            account = self._require(alias)
            # A console account's row exists (only its flag changes); a config one gets a row.
            await self.repo.save_account(alias, None, disabled)
            self._flag(account, disabled)
        return account

    async def remove(self, alias: str) -> None:
        async with self._lock:
            account = self._require(alias)
            if alias in self.config_aliases:
                raise Conflict("this account comes from the config file ([kimi] tokens): remove "
                               "it there and restart, or disable it here", code="config_account")
            await self.repo.delete_account(alias, account.key)
            self._drop(account)

    def _require(self, alias: str) -> Account:
        account = self._find(alias)
        if account is None:
            raise NotFound(f"no server account '{alias}'", code="account_not_found")
        return account

    def listing(self, margin: float) -> list[dict]:
        now = time.time()
        every = list(self.pool.accounts) + list(self.disabled.values())
        return [self._describe(a, now, margin) for a in every]

    def _describe(self, a: Account, now: float, margin: float) -> dict:
        state = "disabled" if a.alias in self.disabled else a.state
        if state == COOLING and a.cooldown_until <= now:
            state = "healthy"       # the pool flips it when it next looks
        expires = a.expires_at
        if a.refresh_token is None:
            next_refresh = None     # nothing to refresh with: the token lives until it expires
        elif expires is None:
            next_refresh = now + REFRESH_EVERY
        else:
            next_refresh = max(now, expires - margin)
        return {"id": a.alias, "source": "config" if a.alias in self.config_aliases else "console",
                "state": state, "reason": a.last_error if state in ("cooling", "dead") else None,
                "cooling_left": round(a.cooldown_until - now, 1) if state == COOLING else None,
                "in_flight": a.in_flight, "token_kind": a.kind,
                "has_refresh_token": a.refresh_token is not None,
                "access_expires_at": expires, "last_refresh": a.refreshed_at,
                "next_refresh": next_refresh if state != "disabled" else None,
                "refreshes": a.refreshes, "last_used": a.last_used or None}

    async def close(self) -> None:
        for account in self._removed + list(self.disabled.values()):
            if account.session is not None:
                await account.session.close()
