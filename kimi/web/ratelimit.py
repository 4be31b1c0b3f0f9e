"""A small per-client rate limit for endpoints that cost upstream calls (POST /token/check)."""

from __future__ import annotations

import time
from collections import deque

from aiohttp import web

from ..errors import RateLimited


class SlidingWindowLimit:
    """At most `limit` calls per `window` seconds per client address. Addresses are
    forgotten once their window is empty, and at most `max_clients` are tracked (the oldest
    is dropped), so a scan from many addresses cannot grow memory without bound."""

    def __init__(self, limit: int, window: float = 60.0, max_clients: int = 4096):
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._calls: dict[str, deque[float]] = {}

    def check(self, request: web.Request, what: str) -> None:
        now = time.monotonic()
        client = request.remote or "-"
        calls = self._calls.pop(client, None) or deque()
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        if len(calls) >= self.limit:
            self._calls[client] = calls
            wait = max(1, round(calls[0] + self.window - now))
            raise RateLimited(f"at most {self.limit} {what} per {self.window:g}s from one "
                              f"address ([server] token_checks_per_minute); try again in {wait}s",
                              code="rate_limited", retry_after=wait)
        calls.append(now)
        self._calls[client] = calls             # most recent last: the oldest goes first
        if len(self._calls) > self.max_clients:
            del self._calls[next(iter(self._calls))]
