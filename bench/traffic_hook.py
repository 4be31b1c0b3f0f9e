"""The console's traffic record on the request path: python bench/traffic_hook.py [--n 200000]

Prints what one request pays for it (TrafficLog.observe, the TRACE_HOOKS hook: one deque
append), next to the hook the gateway already runs (Prometheus Metrics.observe) and an empty
call for scale; then what the work moved off the request path costs (folding a full ring into
the minute buckets, listing the newest 200 rows, a 6-hour chart series), and the memory a
full ring holds. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from kimi.admin.console import FOLD_SLICE  # noqa: E402
from kimi.admin.traffic import TrafficLog  # noqa: E402
from kimi.canonical.request import Trace  # noqa: E402
from kimi.web.metrics import Metrics  # noqa: E402


class FakeRequest:
    """What the hooks read from a request: its path, method and matched route."""
    def __init__(self, app: web.Application):
        self.path = "/v1/chat/completions"
        self.method = "POST"
        self.app = app
        self.match_info = web.UrlMappingMatchInfo({}, _route(app))


def _route(app: web.Application):
    async def handler(request):
        return web.Response()
    return app.router.add_post("/v1/chat/completions", handler)


def trace(i: int) -> Trace:
    now = time.monotonic()
    return Trace(request_id=f"{i:016x}", route="POST /v1/chat/completions", model="kimi",
                 account="acct-0123456789", status=200, started=now - 1.2,
                 first_token=now - 0.9, api_key="ak_0123456789ab", prompt_tokens=120,
                 completion_tokens=480)


def per_call_ns(fn, request, traces, now) -> float:
    gc.disable()
    start = time.perf_counter_ns()
    for t in traces:
        fn(request, t, now)
    elapsed = time.perf_counter_ns() - start
    gc.enable()
    return elapsed / len(traces)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000, help="calls per measurement")
    parser.add_argument("--ring", type=int, default=10_000, help="[admin] traffic_records")
    args = parser.parse_args()
    app = web.Application()
    request = FakeRequest(app)
    traces = [trace(i) for i in range(args.n)]
    now = time.monotonic()

    def nothing(request, t, now):
        pass
    log = TrafficLog(args.ring)
    metrics = Metrics(app)
    print(f"per request, best of 5 runs of {args.n:,} calls:")
    for name, fn in (("empty call", nothing), ("TrafficLog.observe", log.observe),
                     ("Metrics.observe", metrics.observe)):
        best = min(per_call_ns(fn, request, traces, now) for _ in range(5))
        print(f"  {name:<20} {best:8.0f} ns")

    del traces                              # 200,000 live objects would slow every GC pass
    gc.collect()
    full = TrafficLog(args.ring)
    for i in range(args.ring):
        full.observe(request, trace(i), now + i * 1e-6)
    slices = []
    while True:
        start = time.perf_counter()
        _, more = full.fold(FOLD_SLICE)
        slices.append((time.perf_counter() - start) * 1000)
        if not more:
            break
    start = time.perf_counter()
    full.rows(limit=200)
    rows_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    full.series(360)
    series_ms = (time.perf_counter() - start) * 1000
    print(f"off the request path, ring of {args.ring:,}:")
    print(f"  fold of a full ring  {sum(slices):8.1f} ms in {len(slices)} slices of "
          f"{FOLD_SLICE}, median {sorted(slices)[len(slices) // 2]:.1f} ms, longest "
          f"{max(slices):.1f} ms (the event loop runs between)")
    print(f"  newest 200 rows      {rows_ms:8.1f} ms")
    print(f"  6-hour chart series  {series_ms:8.1f} ms")

    gc.collect()
    tracemalloc.start()
    held = TrafficLog(args.ring)
    for i in range(args.ring * 2):          # twice over: the ring stays at its bound
        held.observe(request, trace(i), now + i * 1e-6)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory of a full ring ({len(held._ring):,} records): {size / 1e6:.1f} MB "
          f"({size / args.ring:.0f} bytes a record)")


if __name__ == "__main__":
    main()
