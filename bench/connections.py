"""New upstream connections per request, counted by the emulator (it counts every client
connection that carries a request), with only gateway traffic in the window."""

from __future__ import annotations

import asyncio
import time

from .clients import gateway_stream
from .procs import Stack
from .procstat import percentile


async def _one(s, stack: Stack, prompt: str) -> float:
    res = await gateway_stream(s, stack.gw_url, prompt)
    if not res.ok or res.ttfc is None:
        raise RuntimeError("a stream failed in the connection count")
    return res.ttfc


async def at_rate(stack: Stack, s, prompt: str, rate: float, seconds: float) -> dict:
    """Requests started on a fixed schedule (`rate` a second, open loop, like independent
    users), whatever the earlier ones are doing."""
    await asyncio.sleep(0.5)            # earlier phases' deletions land first
    before = await stack.connections()
    t0, n = time.monotonic(), round(rate * seconds)

    async def at(i: int) -> float:
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        return await _one(s, stack, prompt)

    ttfc = await asyncio.gather(*(at(i) for i in range(n)))
    await asyncio.sleep(0.5)            # and this phase's own
    new = await stack.connections() - before
    await stack.reset()
    return {"rate": rate, "requests": n, "new": new, "per_request": new / n,
            "gateway_p50": percentile(ttfc, 50) * 1000}


async def paced(stack: Stack, s, prompt: str, requests: int, gap: float) -> dict:
    """One request every `gap` seconds: the pause a user takes. With the pool spread over
    every account, each of these goes to an account that has not been used for a while."""
    await asyncio.sleep(0.5)
    before = await stack.connections()
    ttfc = []
    for i in range(requests):
        if i:
            await asyncio.sleep(gap)
        ttfc.append(await _one(s, stack, prompt))
    await asyncio.sleep(0.5)
    new = await stack.connections() - before
    await stack.reset()
    return {"gap_s": gap, "requests": requests, "new": new, "per_request": new / requests,
            "accounts": stack.accounts, "gateway_p50": percentile(ttfc, 50) * 1000}
