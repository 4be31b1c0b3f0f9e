"""Which configured account takes the next stream, without looking at every account.

The accounts that can take a stream are kept by streams in flight (a level per count below the
per-account limit), each level in least-recently-handed-out order, so the next pick is the
first clean account of the lowest level: least busy, round robin among equals. An account found
cooling down, dead or avoided on the way is parked and looked at again once a second, so a pick
costs the same with 5 accounts or 5,000 (it grows only with the accounts that are unwell).
"""

from __future__ import annotations

REVIEW_SECONDS = 1.0


class ReadyAccounts:
    def __init__(self, accounts: list, max_streams: int):
        self._levels: list[dict] = [dict.fromkeys(accounts)] + [{} for _ in range(max_streams - 1)]
        self._parked: dict = {}
        self._members = set(accounts)
        self._next_review = 0.0

    def shuffle(self, rng) -> None:
        """Hand out the idle accounts in an order of this process's own: replicas that share
        the accounts then rarely reach for the same one at the same moment (each such clash
        costs a lease round trip and another pick)."""
        idle = list(self._levels[0])
        rng.shuffle(idle)
        self._levels[0] = dict.fromkeys(idle)

    @property
    def parked(self) -> list:
        return list(self._parked)

    def take(self, exclude, now: float):
        """The first clean account (usable, not avoided, not excluded) of the lowest level, or
        None. The unwell ones passed on the way are parked."""
        if now >= self._next_review:
            self._review(now)
        for level in self._levels:
            found, unwell = None, []
            for acct in level:
                if acct.alias in exclude:
                    continue
                if acct.avoid_until > now or not acct.usable(now):
                    unwell.append(acct)
                    continue
                found = acct
                break
            for acct in unwell:
                del level[acct]
                self._parked[acct] = None
            if found is not None:
                return found
        return None

    def add(self, acct) -> None:
        self._members.add(acct)
        if acct.in_flight < len(self._levels):
            self._levels[acct.in_flight][acct] = None

    def remove(self, acct) -> None:
        self._members.discard(acct)
        self._parked.pop(acct, None)
        for level in self._levels:
            level.pop(acct, None)

    def moved(self, acct, before: int) -> None:
        """`acct.in_flight` changed from `before`: it goes to the end of its new level."""
        if acct in self._parked or acct not in self._members:
            return
        if before < len(self._levels):
            self._levels[before].pop(acct, None)
        if acct.in_flight < len(self._levels):
            self._levels[acct.in_flight][acct] = None

    def _review(self, now: float) -> None:
        self._next_review = now + REVIEW_SECONDS
        for acct in [a for a in self._parked if a.avoid_until <= now and a.usable(now)]:
            del self._parked[acct]
            if acct.in_flight < len(self._levels):
                self._levels[acct.in_flight][acct] = None
