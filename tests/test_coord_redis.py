"""The Redis coordination (leases, cooldowns, conversation locks, cluster jobs) against a real
redis-server, with short TTLs so expiry is seen within a test."""

import asyncio
import time

import pytest

from kimi.coord import SharedStateUnavailable
from kimi.coord.redis import RedisCoord


@pytest.fixture
async def coords(redis_url):
    made = []

    def make(**kw):
        coord = RedisCoord(redis_url, **kw)
        made.append(coord)
        return coord
    yield make
    for coord in made:
        await coord.close()


async def test_one_lease_per_account_across_replicas_with_growing_fences(coords):
    a, b = coords(lease_ttl=5), coords(lease_ttl=5)
    first = await a.acquire("acct", lambda: None)
    assert first.fence == 1
    assert await b.acquire("acct", lambda: None) == 0.0          # busy elsewhere
    other = await b.acquire("acct-2", lambda: None)               # another account is free
    await first.release()
    second = await b.acquire("acct", lambda: None)
    assert second.fence == 2
    await second.release()
    await other.release()


async def test_a_dead_replicas_lease_expires_and_a_stale_release_frees_nothing(coords):
    a, b = coords(lease_ttl=0.3), coords(lease_ttl=0.3)
    held = await a.acquire("acct", lambda: None)
    held._renewer.cancel()                  # the replica died: nobody renews
    assert await b.acquire("acct", lambda: None) == 0.0
    await asyncio.sleep(0.35)
    taken = await b.acquire("acct", lambda: None)
    assert taken.fence == 2
    await held.release()                    # the dead owner's late release ...
    assert await a.acquire("acct", lambda: None) == 0.0          # ... left b's lease alone
    await taken.release()


async def test_renewal_keeps_a_long_stream_and_a_lost_lease_stops_it(coords):
    a, b = coords(lease_ttl=0.3), coords(lease_ttl=0.3)
    lost = asyncio.Event()
    held = await a.acquire("acct", lost.set)
    await asyncio.sleep(0.7)                # more than two TTLs: renewed meanwhile
    assert not lost.is_set()
    assert await b.acquire("acct", lambda: None) == 0.0
    # Someone else takes the account (as after a partition): the holder must give up.
    await a.redis.delete("kimi:lease:acct")
    intruder = await b.acquire("acct", lambda: None)
    await asyncio.wait_for(lost.wait(), 1.0)
    await held.release()
    await intruder.release()


async def test_a_lease_survives_a_redis_flush_when_nobody_took_the_account(coords):
    a, b = coords(lease_ttl=0.3), coords(lease_ttl=0.3)
    lost = asyncio.Event()
    held = await a.acquire("acct", lost.set)
    await a.redis.flushall()                # what a restarted Redis looks like
    await asyncio.sleep(0.25)               # renewed (re-taken) meanwhile
    assert await b.acquire("acct", lambda: None) == 0.0
    assert not lost.is_set()
    await held.release()


async def test_a_cooldown_is_seen_by_every_replica(coords):
    a, b = coords(lease_ttl=5), coords(lease_ttl=5)
    await a.cool_down("acct", 2.0, "rate limited")
    wait = await b.acquire("acct", lambda: None)
    assert 1.5 < wait <= 2.0
    await a.cool_down("acct", 0.5, "shorter")           # never shortens a longer one
    assert await b.acquire("acct", lambda: None) > 1.0


async def test_conversation_turns_are_serialized_across_replicas(coords):
    a, b = coords(lease_ttl=0.6), coords(lease_ttl=0.6)
    order = []

    async def turn(coord, name):
        async with coord.lock_for("scope", "conv-1"):
            order.append(name + "-in")
            await asyncio.sleep(0.8)        # longer than the TTL: kept alive while held
            order.append(name + "-out")
    await asyncio.gather(turn(a, "a"), turn(b, "b"))
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])


async def test_a_background_job_runs_once_per_window_across_replicas(coords):
    a, b = coords(), coords()
    runs = [await c.claim("purge", 0.3) for c in (a, b, a, b)]
    assert runs.count(True) == 1
    await asyncio.sleep(0.3)
    assert [await c.claim("purge", 0.3) for c in (b, a)] == [True, False]


async def test_an_unreachable_redis_is_a_clear_503_quickly():
    from system_tools import free_port
    coord = RedisCoord(f"redis://127.0.0.1:{free_port()}/0")
    start = time.monotonic()
    with pytest.raises(SharedStateUnavailable) as e:
        await coord.acquire("acct", lambda: None)
    assert e.value.status == 503 and e.value.code == "coordination_unavailable"
    assert time.monotonic() - start < 2.0
    assert await coord.ping() is False
    await coord.close()


async def test_a_shared_answer_is_fetched_once_per_window_across_replicas(coords):
    a, b = coords(), coords()
    calls = []

    async def fetch():
        calls.append(1)
        return {"models": len(calls)}
    assert await a.shared("catalogue", 5, fetch) == {"models": 1}
    assert await b.shared("catalogue", 5, fetch) == {"models": 1}     # a's answer
    assert await a.shared("catalogue", 5, fetch) == {"models": 1}
    assert len(calls) == 1


async def test_two_cluster_jobs_of_the_same_method_name_both_run(coords):
    """The conversation purge and the stored-Responses purge are both `purge_expired`: each
    is claimed on its own, so one does not take the other's round."""
    from kimi.app import _every
    ran = []

    class Conversations:
        async def purge_expired(self):
            ran.append("conversations")

    class Responses:
        async def purge_expired(self):
            ran.append("responses")
    jobs = coords()
    tasks = [asyncio.create_task(_every(60.0, jobs, owner().purge_expired))
             for owner in (Conversations, Responses)]
    for _ in range(100):
        if len(ran) == 2:
            break
        await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(ran) == ["conversations", "responses"]
