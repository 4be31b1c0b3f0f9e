"""The operator console's collaborators, held in one app slot: the accounts it manages, the API
keys it made, the traffic record, the login sessions, and the store queries it needs."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from aiohttp import web

from ..store.admin import ConsoleRepo
from .accounts import ConsoleAccounts
from .keys import ApiKeys
from .session import Sessions
from .traffic import TrafficLog

log = logging.getLogger("kimi.admin")

FOLD_SLICE = 500            # records folded between two turns of the event loop
CONSOLE = web.AppKey("console", object)     # Console, when [admin] key is set
TRAFFIC = web.AppKey("traffic", TrafficLog)


@dataclass
class Console:
    accounts: ConsoleAccounts
    keys: ApiKeys
    traffic: TrafficLog
    sessions: Sessions
    repo: ConsoleRepo
    service: object             # the chat service: deletes a conversation and its Kimi chat
    refresh_margin: float
    replica: str | None = None  # with several replicas: this one's name (its own traffic)

    async def fold(self) -> None:
        """Bring the charts and per-key totals up to date (and the stored key counters), a
        slice at a time with the event loop free in between. Answers cut short are counted
        first, in a thread."""
        for trace in self.traffic.uncounted():
            count, trace.count_later = trace.count_later, None
            try:
                await asyncio.to_thread(count)
            except Exception:
                log.exception("counting an answer cut short failed")
        while True:
            deltas, more = self.traffic.fold(FOLD_SLICE)
            await self.keys.add_usage(deltas)
            if not more:
                return
            await asyncio.sleep(0)

    def key_name(self, key_id: str | None) -> str | None:
        return self.keys.name_of(key_id) if key_id is not None else None

    def scope_name(self, scope: str) -> str:
        """Conversation scopes as the console shows them (see web/auth.py)."""
        kind, _, value = scope.partition(":")
        if kind == "key":
            return "config key" if len(value) == 64 else self.keys.name_of(value)
        if scope == "server":
            return "no key (server accounts)"
        if kind in ("kimi", "bearer"):
            return f"{'pass-through token' if kind == 'kimi' else 'client key'} {value[:10]}"
        return f"pass-through token {scope}"


def replica_name() -> str:
    """How the traffic page names the replica that answered: host name and process id."""
    return f"{socket.gethostname()}, pid {os.getpid()}"


def console_for(request: web.Request) -> Console:
    """The console, once the request is known to come from its operator."""
    console = request.app[CONSOLE]
    console.sessions.check(request)
    return console
