"""Several replicas, one console: every replica keeps the API keys and console accounts that
any replica changed, without a restart.

A change made through the console bumps a number in the shared store, in the same transaction
(kimi.store.postgres.PgConsoleRepo). Each replica reads that number every second and reloads
its keys and accounts when it moved, so a key revoked on one replica is refused by all within
about a second; a full reload every minute is the backstop. Matching a key stays a dict lookup
on the request path. One process (the SQLite store) has nothing to follow and runs none of it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..coord import SharedStateUnavailable

log = logging.getLogger("kimi.admin")

POLL = 1.0          # seconds between two reads of the change number
BACKSTOP = 60.0     # seconds: reload anyway after this long


class Follower:
    def __init__(self, repo, keys, accounts):
        self.repo, self.keys, self.accounts = repo, keys, accounts
        self.seen: int | None = None
        self.loaded_at = 0.0

    async def check(self) -> None:
        version = await self.repo.version()
        if version == self.seen and time.monotonic() - self.loaded_at < BACKSTOP:
            return
        await self.keys.load()
        await self.accounts.load()
        self.seen, self.loaded_at = version, time.monotonic()

    async def run(self) -> None:
        failing = None      # the failure last logged: each kind once until a check succeeds
        while True:
            await asyncio.sleep(POLL)
            try:
                await self.check()
                failing = None
            except SharedStateUnavailable:
                if failing != "unavailable":    # /readyz reports it meanwhile
                    log.warning("cannot read console changes from the shared store; "
                                "trying every %gs", POLL)
                failing = "unavailable"
            except Exception as e:
                if failing != type(e):
                    log.exception("reloading the console's keys and accounts failed")
                failing = type(e)
