"""The gateway benchmark. `python bench/run.py [--loop both|asyncio|uvloop] [--quick]`

Starts the emulator (bench/emulator_proc.py) and the gateway (gateway.py) as separate
processes on loopback, drives them with async aiohttp clients from this process (latency,
connection counts, memory) and with wrk (saturation: `apt-get install wrk`), prints the table
and writes it into BENCHMARKS.md (between the bench markers; the rest is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import phases  # noqa: E402
from bench.procs import Stack  # noqa: E402
from bench.report import median_merge, render, write_benchmarks  # noqa: E402


async def run_one(loop_choice: str, quick: bool, workdir: str, pin: str) -> dict:
    n = phases.sizes(quick)
    async with Stack(os.path.join(workdir, "a"), loop_choice, accounts=n["accounts"],
                     pin=pin) as stack:
        out = await phases.run_all(stack, quick)
    # A fresh gateway with one account per open stream: its idle RSS is "many accounts
    # configured, none used yet".
    async with Stack(os.path.join(workdir, "b"), loop_choice, accounts=n["open_streams"],
                     pin=pin) as stack:
        out["memory"] = await phases.memory(stack, quick)
    print(f"  memory: {out['memory']}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="kimi-gateway benchmark")
    parser.add_argument("--loop", choices=("both", "asyncio", "uvloop"), default="both",
                        help="gateway event loop(s) to measure")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    parser.add_argument("--placement", choices=("pinned", "shared"), default="pinned",
                        help="pinned: the gateway on a CPU of its own, emulator and client on "
                             "the others (the default); shared: wherever the OS puts them")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat each column and report the median of every figure")
    parser.add_argument("--replicas", action="store_true",
                        help="instead: one replica vs two behind nginx, and SQLite vs "
                             "PostgreSQL + Redis (bench/replicas.py)")
    args = parser.parse_args()
    if args.replicas:
        from bench import replicas
        return replicas.main(args.quick, not args.no_write)
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    _fast_client_loop()
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {choice: [] for choice in loops}
    for i in range(args.runs):
        for choice in loops:    # interleaved, so a noisy minute hits both columns
            with tempfile.TemporaryDirectory(prefix="kimi-bench-") as workdir:
                print(f"== run {i + 1}/{args.runs}: gateway on {choice} ==", flush=True)
                runs[choice].append(asyncio.run(run_one(choice, args.quick, workdir,
                                                        args.placement)))
    results = {choice: median_merge(got) for choice, got in runs.items()}
    table = render(results, quick=args.quick, runs=args.runs, placement=args.placement,
                   load=(load_before, os.getloadavg()[0]))
    print(table)
    if not args.no_write:
        write_benchmarks(table)
    return 0


def _fast_client_loop() -> None:
    # The client (and the emulator) run on uvloop when present whatever the gateway uses, so
    # the gateway's loop is the only thing that changes between columns.
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


if __name__ == "__main__":
    sys.exit(main())
