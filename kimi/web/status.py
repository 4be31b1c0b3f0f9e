"""What the pool looks like right now, for the homepage, /readyz and /metrics.

Reads the server's own accounts by duck typing (`.alias`, `.state`, `.in_flight`,
`.cooldown_until`), so `web/` stays free of `upstream/` imports. Pass-through accounts
(tokens sent by clients) are never shown: they belong to callers, not to this server.
"""

from __future__ import annotations

import time

from aiohttp import web

from .keys import PROBES, SERVICE

STATES = ("healthy", "cooling", "dead")
# A request waits this long for a cooling account (upstream/accounts.py COOLING_WAIT), so an
# account back within it still serves requests: /readyz counts it.
SOON = 5.0


def server_accounts(app: web.Application) -> list:
    service = app.get(SERVICE)
    return list(service.pool.accounts) if service is not None else []


def effective_state(account, now: float) -> str:
    # A cooling account whose cooldown has ended is usable again; the pool only flips its
    # state when it next looks, so report what it would find.
    if account.state == "cooling" and getattr(account, "cooldown_until", 0.0) <= now:
        return "healthy"
    return account.state


def is_usable(account, now: float) -> bool:
    return effective_state(account, now) == "healthy"


def state_counts(accounts: list, now: float | None = None) -> dict[str, int]:
    now = time.time() if now is None else now
    counts = dict.fromkeys(STATES, 0)
    for account in accounts:
        state = effective_state(account, now)
        counts[state] = counts.get(state, 0) + 1
    return counts


async def readyz(request: web.Request) -> web.Response:
    """Ready when a request could be served now: some server account is usable (or back
    within the few seconds a request waits for it), or none is configured (pass-through mode, where each caller brings a Kimi token)."""
    accounts = server_accounts(request.app)
    now = time.time()
    usable = sum(1 for a in accounts if is_usable(a, now + SOON))
    # Several replicas: the shared store and the coordination server must answer too.
    shared = {name: await probe() for name, probe in request.app.get(PROBES, {}).items()}
    ready = (not accounts or usable > 0) and all(shared.values())
    body = {"status": "ready" if ready else "unavailable", "mode":
            "pass-through" if not accounts else "accounts", "usable_accounts": usable,
            "accounts": state_counts(accounts)}
    if shared:
        body["shared_state"] = shared
    return web.json_response(body, status=200 if ready else 503)
