"""The measurements, one function per figure. Each returns plain numbers for the report."""

from __future__ import annotations

import asyncio
import random
import time

from . import connections, saturation
from .clients import direct_stream, gateway_stream, new_session
from .procs import Stack
from .procstat import memory_mb, percentile

PROMPT = "Benchmark: say hello."                 # default answer: ~25 content pieces
LONG_PROMPT = "Stream me a long answer. " * 80   # ~2,000 chars echoed: ~520 pieces
SLOW_PROMPT = "Keep this stream open. " * 18     # ~100 pieces, 0.25 s apart: ~25 s open


def sizes(quick: bool) -> dict:
    if quick:
        return dict(levels=((1, 20), (10, 3), (20, 2)), seconds=2.0, open_streams=100,
                    accounts=60, rt_reps=2, steady=(20,), slice_s=1.0, rate_s=2.0,
                    paced=(2, 3.0))
    # paced: (requests, seconds apart) for the connection count at a slow trickle
    return dict(levels=((1, 300), (50, 20), (200, 8)), seconds=8.0, open_streams=1000,
                accounts=256, rt_reps=5, steady=(50, 200), slice_s=4.0, rate_s=10.0,
                paced=(4, 30.0))


async def run_all(stack: Stack, quick: bool) -> dict:
    n = sizes(quick)
    out: dict = {}
    async with new_session() as s:
        await _burst(stack, s, "d", n["accounts"])      # warm every account's connection
        await _burst(stack, s, "g", n["accounts"])
        for conc, rounds in n["levels"]:
            out[f"ttfc_{conc}"] = await ttfc(stack, s, conc, rounds)
            print(f"  ttfc at {conc}: {out[f'ttfc_{conc}']}", flush=True)
        for conc in n["steady"]:
            out[f"steady_{conc}"] = await steady(stack, s, conc, n["slice_s"])
            print(f"  steady at {conc}: {out[f'steady_{conc}']}", flush=True)
        out["roundtrips"] = await roundtrips(stack, s, n["rt_reps"])
        out["paced"] = await paced(stack, s)
        out["stream_cpu"] = await saturation.streams(stack, s, LONG_PROMPT, n["seconds"], 1)
        out["stream_cpu_4"] = await saturation.streams(stack, s, LONG_PROMPT, n["seconds"], 4)
        out["unary"] = await saturation.unary(stack, s, PROMPT, n["seconds"])
        out["conn_rate"] = await connections.at_rate(stack, s, PROMPT, 50, n["rate_s"])
        out["conn_paced"] = await connections.paced(stack, s, PROMPT, *n["paced"])
    for key in ("roundtrips", "paced", "stream_cpu", "stream_cpu_4", "unary", "conn_rate",
                "conn_paced"):
        print(f"  {key}: {out[key]}", flush=True)
    return out


async def _burst(stack: Stack, s, mode: str, conc: int, prompt: str = PROMPT) -> list:
    if mode in ("d", "n"):
        url = stack.emu_url if mode == "d" else stack.null_url
        jobs = [direct_stream(s, url, stack.direct_tokens[i], prompt) for i in range(conc)]
    else:
        jobs = [gateway_stream(s, stack.gw_url, prompt) for _ in range(conc)]
    results = await asyncio.gather(*jobs)
    bad = sum(1 for r in results if not r.ok or r.ttfc is None)
    if bad:
        raise RuntimeError(f"{bad} of {conc} {mode} streams failed; see the gateway log")
    return results


async def ttfc(stack: Stack, s, conc: int, rounds: int) -> dict:
    """Bursts of `conc` simultaneous streams, direct, gateway and the do-nothing proxy taking
    turns (order rotated every round), a pause between bursts so that the gateway's chat
    deletions land."""
    got = {"d": [], "g": [], "n": []}
    modes = ["d", "g", "n"]
    for r in range(rounds):
        for mode in modes[r % 3:] + modes[:r % 3]:
            got[mode] += [x.ttfc for x in await _burst(stack, s, mode, conc)]
            await asyncio.sleep(0.02 if conc == 1 else 0.3)
    return _with_floor(got)


def _with_floor(got: dict) -> dict:
    """Gateway against direct, the do-nothing proxy against direct, and the gateway against
    the proxy (what the gateway adds over any aiohttp process in its place)."""
    out = _compare(got["d"], got["g"])
    floor = _compare(got["d"], got["n"])
    over = _compare(got["n"], got["g"])
    out.update(null_added_p50=floor["added_p50"], null_added_p99=floor["added_p99"],
               null_p50=floor["gateway_p50"], over_null_p50=over["added_p50"],
               over_null_p99=over["added_p99"])
    return out


async def steady(stack: Stack, s, conc: int, slice_s: float) -> dict:
    """`conc` streams always in flight (each worker starts the next as one ends), upstream
    pieces 10 ms apart like a fast real model: what a new request feels under that load.
    Direct, gateway and the do-nothing proxy take turns in slices; every request's time to
    first chunk counts."""
    await stack.knobs(chunk_delay=0.01)
    got = {"d": [], "g": [], "n": []}
    rng = random.Random(conc)
    for mode in ("d", "g", "n", "n", "g", "d"):
        deadline = time.monotonic() + slice_s

        async def worker(i: int) -> None:
            # Streams are all alike: without staggered starts and a little jitter the
            # workers would move in lockstep, which is a burst, measured above.
            await asyncio.sleep(rng.uniform(0, 0.4))
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(0, 0.02))
                if mode in ("d", "n"):
                    url = stack.emu_url if mode == "d" else stack.null_url
                    res = await direct_stream(s, url, stack.direct_tokens[i], PROMPT)
                else:
                    res = await gateway_stream(s, stack.gw_url, PROMPT)
                if not res.ok or res.ttfc is None:
                    raise RuntimeError(f"a {mode} stream failed in the steady run")
                got[mode].append(res.ttfc)

        await asyncio.gather(*(worker(i) for i in range(conc)))
        await asyncio.sleep(0.3)
    await stack.knobs(chunk_delay=0.0)
    await stack.reset()
    return _with_floor(got)


def _compare(direct: list[float], gateway: list[float]) -> dict:
    ms = {}
    for p in (50, 99):
        d, g = percentile(direct, p) * 1000, percentile(gateway, p) * 1000
        ms[f"direct_p{p}"], ms[f"gateway_p{p}"], ms[f"added_p{p}"] = d, g, g - d
    ms["samples"] = len(gateway)
    return ms


async def roundtrips(stack: Stack, s, reps: int) -> dict:
    """With 30 ms added per upstream call: which calls the emulator received between the
    request and the first content piece, and what the gateway adds in time. While counting,
    frames come 50 ms apart so that the stream (and the DeleteChat after it) ends long after
    the first piece: only calls made before the first token fall in the window."""
    await stack.knobs(call_delay=0.03, chunk_delay=0.05)
    counts, paths = [], []
    for _ in range(reps):
        await asyncio.sleep(0.3)              # earlier deletions land first
        t0 = time.monotonic()
        res = (await _burst(stack, s, "g", 1))[0]
        before = [p for p, t in await stack.calls() if t0 <= t < res.first_at]
        counts.append(len(before))
        if len(before) >= max(counts):
            paths = before
    await stack.knobs(chunk_delay=0.0)
    timed = await ttfc(stack, s, 1, 10)
    await stack.knobs(call_delay=0.0)
    await stack.reset()
    return {"max_calls": max(counts), "min_calls": min(counts),
            "paths": [p.rsplit("/", 1)[-1] for p in paths],
            "added_p50": timed["added_p50"], "gateway_p50": timed["gateway_p50"],
            "over_null_p50": timed["over_null_p50"]}


async def paced(stack: Stack, s) -> dict:
    """Upstream sends a frame every 10 ms: the first piece must not wait for the rest."""
    await stack.knobs(chunk_delay=0.01)
    timed = await ttfc(stack, s, 1, 6)
    await stack.knobs(chunk_delay=0.0)
    return {"direct_p50": timed["direct_p50"], "gateway_p50": timed["gateway_p50"],
            "null_p50": timed["null_p50"]}


async def memory(stack: Stack, quick: bool) -> dict:
    """RSS idle (accounts configured, nothing used yet) and with N slow streams open."""
    n = sizes(quick)["open_streams"]
    out = {"accounts": stack.accounts, "idle": memory_mb(stack.gateway_pid)["VmRSS"]}
    await stack.knobs(chunk_delay=0.25)
    started = 0
    all_open = asyncio.Event()

    def on_first():
        nonlocal started
        started += 1
        if started == n:
            all_open.set()

    async with new_session() as s:
        tasks = [asyncio.ensure_future(gateway_stream(s, stack.gw_url, SLOW_PROMPT, on_first))
                 for _ in range(n)]
        await asyncio.wait_for(all_open.wait(), 120)
        peak = 0.0
        for _ in range(10):
            await asyncio.sleep(0.2)
            peak = max(peak, memory_mb(stack.gateway_pid)["VmRSS"])
        out.update(streams=n, open_rss=peak, hwm=memory_mb(stack.gateway_pid)["VmHWM"])
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await stack.knobs(chunk_delay=0.0)
    return out
