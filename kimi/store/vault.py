"""The token vault port: where rotated refresh tokens live, and who may rotate them.

Kimi rotates the refresh token on every refresh and refuses the old one at once, so a token
that is lost or presented twice kills its account. `rotate()` is the one way to exchange a
refresh token: it runs `exchange(refresh_token)` as the only writer for the account and stores
the new pair before it is returned (durable first). This is the single-process version on the
SQLite store; `kimi.store.postgres.PgTokenVault` is the one for several replicas (a row lock).
"""

from __future__ import annotations

import logging

log = logging.getLogger("kimi.auth")


class LocalTokenVault:
    """One process: the token manager's single-flight already makes one writer per account."""

    def __init__(self, store):
        self.store = store

    async def load_tokens(self, alias: str):
        return await self.store.load_tokens(alias)

    async def save_tokens(self, alias: str, refresh_token, access_token) -> None:
        await self.store.save_tokens(alias, refresh_token, access_token)

    async def rotate(self, alias: str, known_rt: str, stale_access, exchange, fresh):
        """(access, refresh) after one exchange of `known_rt`; None when Kimi refused it.
        `stale_access` and `fresh` matter only with several writers (see PgTokenVault)."""
        pair = await exchange(known_rt)
        if pair is None:
            return None
        access, new_rt = pair[0], pair[1] or known_rt
        try:
            await self.save_tokens(alias, new_rt, access)
        except Exception as e:
            # The old refresh token is spent either way: keep the new one in memory.
            log.error("could not store the rotated refresh token of account %s... (%s); kept "
                      "in memory only", alias[:10], type(e).__name__)
        return access, new_rt
