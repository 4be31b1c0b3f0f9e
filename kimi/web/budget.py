"""A memory budget shared by every request body being read and parsed at once.

One large JSON body peaks at a few times its size while it is parsed (the bytes, the parser's
copy, the objects it makes); a handful of concurrent 130 MiB bodies would take gigabytes. Each
body reserves `PEAK_FACTOR` times its size as it arrives and gives it back when its request
ends; a body that would take the budget past its limit is refused: 429 when it would fit once
others finish, 413 when it could never fit.
"""

from __future__ import annotations

from ..errors import PayloadTooLarge, RateLimited

PEAK_FACTOR = 3.5       # measured: a plain JSON body peaks at about 3.4x its size
MIB = 1024 * 1024


class BodyBudget:
    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.reserved = 0

    def reserve(self, body_bytes: int) -> int:
        """Reserves the memory `body_bytes` more of a body will take; returns the amount, to
        be given back with `release`."""
        need = int(body_bytes * PEAK_FACTOR)
        if self.reserved + need <= self.limit:
            self.reserved += need
            return need
        if need > self.limit:
            raise PayloadTooLarge(
                f"a request body of {body_bytes / MIB:.1f} MiB would take about "
                f"{need / MIB:.0f} MiB to parse, more than [server] body_memory_mb = "
                f"{self.limit // MIB}", code="body_too_large")
        raise RateLimited("the gateway is reading other large request bodies right now "
                          f"([server] body_memory_mb = {self.limit // MIB}); try again shortly",
                          code="body_memory_busy", retry_after=1)

    def release(self, amount: int) -> None:
        self.reserved -= amount
