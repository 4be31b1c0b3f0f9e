"""Coordination ports: what replicas must agree on, with the in-process implementations used
by a single gateway (the default).

    ConversationLocks  one turn at a time per conversation
    AccountLeases      at most one upstream stream per Kimi account (with cooldowns shared)
    ClusterJobs        background work (and the catalogue call) once per cluster, not per replica

`kimi.coord.redis` implements the same three on a Redis-protocol server for several
replicas; `kimi.app` (the composition root) picks one set.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..errors import GatewayError


class Lock(Protocol):
    async def acquire(self) -> bool: ...
    def release(self) -> None: ...
    async def __aenter__(self): ...
    async def __aexit__(self, *exc) -> None: ...


class ConversationLocks(Protocol):
    def lock_for(self, scope: str, cid: str) -> Lock: ...


class Lease(Protocol):
    fence: int                          # grows with every grant of this account's lease

    async def release(self) -> None: ...


class AccountLeases(Protocol):
    async def acquire(self, alias: str, on_lost) -> Lease | float:
        """A lease, or the seconds the account is still cooling down (0.0: busy elsewhere).
        `on_lost()` is called if the lease cannot be renewed: the stream must stop."""

    async def cool_down(self, alias: str, seconds: float, reason: str) -> None: ...


class ClusterJobs(Protocol):
    async def claim(self, name: str, seconds: float) -> bool:
        """True for exactly one replica per `seconds` window: that one runs the job."""

    async def shared(self, name: str, seconds: float, fetch):
        """`await fetch()` by the replica that claims this window, its answer for the others
        (a JSON value)."""


class LocalLocks:
    """asyncio locks keyed by conversation; idle ones are forgotten now and then."""

    def __init__(self):
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def lock_for(self, scope: str, cid: str) -> asyncio.Lock:
        key = (scope, cid)
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 4096:     # forget idle locks now and then
                self._locks = {k: v for k, v in self._locks.items()
                               if v.locked() or getattr(v, "_waiters", None)}
            lock = self._locks[key] = asyncio.Lock()
        return lock


class LocalLease:
    fence = 0

    async def release(self) -> None:
        pass


class LocalLeases:
    """One process: the account pool's own counters already keep one stream per account."""

    async def acquire(self, alias: str, on_lost) -> LocalLease:
        return LocalLease()

    async def cool_down(self, alias: str, seconds: float, reason: str) -> None:
        pass


class LocalJobs:
    async def claim(self, name: str, seconds: float) -> bool:
        return True

    async def shared(self, name: str, seconds: float, fetch):
        return await fetch()


class SharedUnary:
    """A client whose unary calls (the model catalogue) are made once per cluster per
    `seconds`: the other replicas take the answer of the one that asked."""

    def __init__(self, client, jobs: ClusterJobs, seconds: float):
        self.client, self.jobs, self.seconds = client, jobs, seconds

    async def unary(self, session, token: str, path: str, body: dict):
        return await self.jobs.shared("unary:" + path.rsplit("/", 1)[-1], self.seconds,
                                      lambda: self.client.unary(session, token, path, body))


class SharedStateUnavailable(GatewayError):
    """The shared store (PostgreSQL) or the coordination server (Redis) cannot be reached:
    a 503 the client may retry; nothing was sent upstream."""
    status = 503
    type = "server_error"
