"""Coordination on a Redis-protocol server, for several replicas behind one address.

What lives here is short-lived and re-creatable (a restarted Redis loses nothing durable):
  kimi:lease:{account}   ZSET of stream leases (member = owner, score = expiry in ms)
  kimi:fence:{account}   counter, the fencing number of each grant
  kimi:cool:{account}    a cooldown, with the cooldown as its TTL
  kimi:conv:{scope}:{id} the lock of a conversation's turn
  kimi:job:{name}        which replica runs a background job in this window
Every decision is one Lua script (atomic); Redis' own clock (TIME) dates the leases, so the
replicas' clocks do not matter. Leases fail closed: a replica that cannot renew one stops its
stream rather than risk two streams on one account (Kimi cannot check a fencing number).
Commands used: SET NX PX, EVALSHA, ZADD, PEXPIRE (any server >= 6.2: Redis 7, Valkey 7.2/8).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from . import SharedStateUnavailable

log = logging.getLogger("kimi.coord")

NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
ACQUIRE = NOW + """
local cool = redis.call('PTTL', KEYS[3])
if cool > 0 then return -cool end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""
# Renew keeps a live lease; a lease whose key vanished (Redis restarted) is taken again when
# there is room, so a restart does not stop streams that no one else replaced.
RENEW = NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
COOL = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def connect(url: str, timeout: float = 2.0, connections: int = 64) -> aioredis.Redis:
    # Few, quick retries: a dead server should become a 503 in about a second, not hang. A
    # burst waits for a free connection (the default pool refuses the 101st at once).
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=connections, timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        decode_responses=True)
    return aioredis.Redis(connection_pool=pool)


class RedisCoord:
    """The three coordination ports (leases, conversation locks, cluster jobs) on one client."""

    def __init__(self, url: str, *, lease_ttl: float = 10.0, max_streams: int = 1):
        self.redis = connect(url)
        self.lease_ttl, self.max_streams = lease_ttl, max_streams
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"      # this replica
        self._acquire, self._renew, self._cool, self._unlock, self._extend = (
            self.redis.register_script(s) for s in (ACQUIRE, RENEW, COOL, UNLOCK, EXTEND))
        self._tasks: set[asyncio.Task] = set()

    async def call(self, what: str, script, keys, args):
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as e:
            raise SharedStateUnavailable(
                f"the coordination server (Redis) cannot be reached ({what}); try again shortly",
                code="coordination_unavailable") from e

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        await self.redis.aclose()

    # --- AccountLeases --------------------------------------------------------------------

    async def acquire(self, alias: str, on_lost) -> RedisLease | float:
        owner = f"{self.owner}-{uuid.uuid4().hex[:8]}"
        ttl = int(self.lease_ttl * 1000)
        got = await self.call("lease", self._acquire,
                              [f"kimi:lease:{alias}", f"kimi:fence:{alias}", f"kimi:cool:{alias}"],
                              [owner, ttl, self.max_streams])
        if got <= 0:
            return -got / 1000.0
        return RedisLease(self, alias, owner, int(got), on_lost)

    async def cool_down(self, alias: str, seconds: float, reason: str) -> None:
        await self.call("cooldown", self._cool, [f"kimi:cool:{alias}"],
                        [reason, max(1, int(seconds * 1000))])

    # --- ConversationLocks ----------------------------------------------------------------

    def lock_for(self, scope: str, cid: str) -> RedisLock:
        return RedisLock(self, f"kimi:conv:{scope}:{cid}")

    # --- ClusterJobs ----------------------------------------------------------------------

    async def claim(self, name: str, seconds: float) -> bool:
        # A little under the period, so the next window is free when any replica's timer fires.
        try:
            return bool(await self.redis.set(f"kimi:job:{name}", self.owner, nx=True,
                                             px=max(1, int(seconds * 900))))
        except (RedisError, OSError):
            return False    # the job waits for the next round; readiness reports the outage


    async def shared(self, name: str, seconds: float, fetch):
        key = f"kimi:shared:{name}"
        try:
            if not await self.claim(name, seconds):
                for _ in range(60):     # the claimer may still be asking (replicas starting)
                    cached = await self.redis.get(key)
                    if cached is not None:
                        return orjson.loads(cached)
                    await asyncio.sleep(0.05)
        except (RedisError, OSError):
            pass            # ask Kimi ourselves
        value = await fetch()   # the claimer, or nobody has stored an answer yet
        try:
            await self.redis.set(key, orjson.dumps(value), px=max(1, int(seconds * 2000)))
        except (RedisError, OSError):
            pass
        return value


class RedisLease:
    """A granted stream lease, renewed every third of its TTL until released."""

    def __init__(self, coord: RedisCoord, alias: str, owner: str, fence: int, on_lost):
        self.coord, self.alias, self.owner, self.fence = coord, alias, owner, fence
        self._on_lost = on_lost
        self._renewer = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        ttl = self.coord.lease_ttl
        good_until = time.monotonic() + ttl
        args = [self.owner, int(ttl * 1000), self.coord.max_streams]
        while True:
            await asyncio.sleep(ttl / 3)
            while True:
                try:
                    ok = await self.coord._renew(keys=[f"kimi:lease:{self.alias}"], args=args)
                    break
                except (RedisError, OSError):
                    # Keep trying while the lease may still be ours; then give up the stream.
                    if time.monotonic() > good_until - ttl / 6:
                        ok = 0
                        break
                    await asyncio.sleep(ttl / 12)
            if not ok:
                log.warning("lost the stream lease of %s (fence %d); stopping its stream",
                            self.alias, self.fence)
                self._on_lost()
                return
            good_until = time.monotonic() + ttl

    async def release(self) -> None:
        self._renewer.cancel()
        try:
            await self.coord.redis.zrem(f"kimi:lease:{self.alias}", self.owner)
        except (RedisError, OSError):
            pass    # the lease expires on its own within its TTL


class RedisLock:
    """A conversation's turn lock: SET NX PX, polled; kept alive while held; released by the
    owner only. `release()` is synchronous (like asyncio.Lock's) and finishes in the background."""

    POLL = 0.02

    def __init__(self, coord: RedisCoord, key: str):
        self.coord, self.key = coord, key
        self.token = uuid.uuid4().hex
        self._keeper: asyncio.Task | None = None

    async def acquire(self) -> bool:
        ttl = int(self.coord.lease_ttl * 1000)
        while True:
            try:
                if await self.coord.redis.set(self.key, self.token, nx=True, px=ttl):
                    break
            except (RedisError, OSError) as e:
                raise SharedStateUnavailable(
                    "the coordination server (Redis) cannot be reached (conversation lock); "
                    "try again shortly", code="coordination_unavailable") from e
            await asyncio.sleep(self.POLL)
        self._keeper = asyncio.get_running_loop().create_task(self._keep(ttl))
        return True

    async def _keep(self, ttl: int) -> None:
        while True:
            await asyncio.sleep(ttl / 3000)
            try:
                await self.coord._extend(keys=[self.key], args=[self.token, ttl])
            except (RedisError, OSError):
                pass    # tried again next round; the TTL bounds a lock left by a dead replica

    def release(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
            self.coord.spawn(self._unlock())

    async def _unlock(self) -> None:
        try:
            await self.coord._unlock(keys=[self.key], args=[self.token])
        except (RedisError, OSError):
            pass    # expires within its TTL

    async def __aenter__(self):
        await self.acquire()
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()
