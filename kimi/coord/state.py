"""The state a gateway keeps, in one of two set-ups chosen by the config:

- one process (the default): the SQLite file and in-process locks, nothing else to run;
- several replicas: PostgreSQL (`[store] url`) for what must last (the operator console's
  accounts and API keys too), a Redis-protocol server (`[coordination] redis_url`) for leases,
  locks and cooldowns. The console's traffic record stays in each replica's memory.

`kimi.app` asks `open_state` for the ports and wires them; asyncpg and redis are imported only
when configured (the `shared` extra).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..config import Config
from . import LocalJobs, LocalLeases, LocalLocks

log = logging.getLogger("kimi.app")


@dataclass
class State:
    vault: object                       # TokenVault: load_tokens, rotate
    conversations: object               # ConversationRepo
    uploads: object                     # UploadStore
    responses: object                   # ResponseRepo (stored Responses-API answers)
    console: object                     # ConsoleRepo (the console's accounts and API keys)
    locks: object = field(default_factory=LocalLocks)
    leases: object = field(default_factory=LocalLeases)
    jobs: object = field(default_factory=LocalJobs)
    probes: dict = field(default_factory=dict)     # name -> async () -> bool, for /readyz
    closers: list = field(default_factory=list)
    shared_leases: bool = False

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()


async def open_state(config: Config) -> State:
    upload_ttl = config.files.dedupe_ttl_hours * 3600
    if config.store.url:
        from ..store.postgres import (PgConsoleRepo, PgConversationRepo, PgResponseRepo,
                                      PgStore, PgTokenVault, PgUploadStore)
        pg = PgStore(config.store.url)
        await pg.open()
        state = State(PgTokenVault(pg), PgConversationRepo(pg), PgUploadStore(pg, upload_ttl),
                      PgResponseRepo(pg), PgConsoleRepo(pg), probes={"postgresql": pg.ping},
                      closers=[pg.close])
        from ..store.admin import rows_left_in
        left = await asyncio.to_thread(rows_left_in, config.store.path)
        if left:
            log.warning("%s holds %d API key(s) and account(s) the operator console made; with "
                        "[store] url set they are not used: make them again in the console",
                        config.store.path, left)
    else:
        from ..store.admin import ConsoleRepo
        from ..store.conversations import ConversationRepo
        from ..store.responses import ResponseRepo
        from ..store.sqlite import Store
        from ..store.uploads import UploadStore
        from ..store.vault import LocalTokenVault
        store = Store(config.store.path)
        await store.open()
        state = State(LocalTokenVault(store), ConversationRepo(store),
                      UploadStore(store, upload_ttl), ResponseRepo(store), ConsoleRepo(store),
                      closers=[store.close])
    await state.uploads.purge()
    if config.coordination.redis_url:
        from .redis import RedisCoord
        coord = RedisCoord(config.coordination.redis_url,
                           lease_ttl=config.coordination.lease_ttl_seconds,
                           max_streams=config.pool.max_streams_per_account)
        state.locks = state.leases = state.jobs = coord
        state.shared_leases = True
        state.probes["redis"] = coord.ping
        state.closers.append(coord.close)
    elif config.store.url:
        log.warning("[store] url is set but [coordination] redis_url is not: run one replica "
                    "only (several need Redis for leases and locks)")
    return state
