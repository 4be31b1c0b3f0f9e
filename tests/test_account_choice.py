"""Choosing an account: least busy, round robin among equals, unwell accounts last or never,
and a pick that does not look at every account of a large pool."""

import pytest

from kimi.errors import RateLimited, UpstreamUnavailable
from kimi.upstream.accounts import Account, AccountPool


def pool_of(n: int, **kw) -> AccountPool:
    return AccountPool(tuple(f"token-{i}" for i in range(n)), None, **kw)


async def take(pool: AccountPool, exclude=frozenset()) -> int:
    acct = await pool.acquire(pool.accounts, exclude)
    return pool.accounts.index(acct)


async def test_least_busy_first_and_round_robin_among_equals():
    pool = pool_of(3, max_streams=2)
    assert [await take(pool) for _ in range(3)] == [0, 1, 2]
    assert await take(pool) == 0            # all at one stream: round robin goes on
    await pool.release(pool.accounts[1])
    assert await take(pool) == 1            # the only idle one
    assert [await take(pool) for _ in range(2)] == [2, 1]
    pool.queue_timeout = 0.05
    with pytest.raises(RateLimited):        # every account at its two streams
        await take(pool)


async def test_replicas_hand_out_the_shared_accounts_in_orders_of_their_own():
    """Two replicas that took the accounts in config order would reach for the same one at
    the same moment every time; each spreads its order, and still hands out every account."""
    import random
    a, b = pool_of(50), pool_of(50)
    a.spread(random.Random(1))
    b.spread(random.Random(2))
    first_a = [await take(a) for _ in range(50)]
    first_b = [await take(b) for _ in range(50)]
    assert sorted(first_a) == sorted(first_b) == list(range(50))
    assert first_a != list(range(50))
    assert sum(x == y for x, y in zip(first_a, first_b)) < 10


async def test_released_accounts_come_round_in_turn():
    pool = pool_of(3)
    picks = []
    for _ in range(6):
        i = await take(pool)
        picks.append(i)
        await pool.release(pool.accounts[i])
    assert picks == [0, 1, 2, 0, 1, 2]


async def test_cooling_and_dead_accounts_are_skipped_and_cooling_ones_return():
    pool = pool_of(3, queue_timeout=0.05)
    pool.accounts[0].cool_down(0.2, "rate limited")
    pool.accounts[1].mark_dead("refused")
    assert await take(pool) == 2
    with pytest.raises(RateLimited):        # 0 cooling, 1 dead, 2 busy: wait, then 429
        await take(pool)
    pool.accounts[0].cooldown_until = 0     # the cooldown is over
    assert await take(pool) == 0


async def test_an_avoided_account_is_the_last_resort():
    pool = pool_of(3)
    pool.accounts[0].avoid(30, "upstream failure")
    assert [await take(pool) for _ in range(2)] == [1, 2]
    assert await take(pool) == 0


async def test_excluded_accounts_are_not_picked():
    pool = pool_of(3)
    assert await take(pool, exclude={pool.accounts[0].alias, pool.accounts[1].alias}) == 2


async def test_nothing_usable_is_an_error_not_a_wait():
    pool = pool_of(2)
    for acct in pool.accounts:
        acct.mark_dead("refused")
    with pytest.raises(UpstreamUnavailable):
        await take(pool)


async def test_a_pick_does_not_look_at_every_account(monkeypatch):
    looked = []
    usable = Account.usable
    monkeypatch.setattr(Account, "usable", lambda self, now: looked.append(self) or usable(self, now))
    pool = pool_of(5000)
    pool.accounts[1].cool_down(60, "rate limited")
    for _ in range(100):
        await pool.release(pool.accounts[await take(pool)])
    assert len(looked) < 300                # a scan would be 500,000
    assert pool.accounts[1] not in [pool.accounts[await take(pool)] for _ in range(4998)]


async def test_pool_members_are_found_by_alias_without_a_scan():
    pool = pool_of(3)
    b = pool.accounts[1]
    assert pool.find(pool.accounts, b.alias) is b
    assert pool.by_alias(b.alias) is b
    assert pool.find(pool.accounts, "nobody") is None
    client = pool.for_client_tokens(["client-token"])
    assert pool.find(pool.accounts, client[0].alias) is None
    assert pool.find(client, client[0].alias) is client[0]
