"""Two checkouts of the gateway side by side at one stream:
`python bench/ab.py OTHER_ROOT [--rounds 300] [--loop asyncio|uvloop]`.

One emulator, the floor proxy, this checkout's gateway ("this") and OTHER_ROOT's ("other",
e.g. a `git worktree` of main), both gateways pinned to the floor proxy's CPU. Every round
sends one stream direct, one through the proxy and one through each gateway, in a rotated
order, so that a noisy minute hits all of them alike. Prints, per gateway, the p50 and p90
time to first content chunk over the proxy and the gateway's CPU time per stream (utime +
stime over the run, divided by its streams: the steadier figure on a shared machine).
`--chunks SECONDS` adds wrk runs of long streams against each gateway in turn (this, other,
other, this; bench/saturation.py): the gateway CPU per streamed chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import phases, saturation  # noqa: E402
from bench.clients import direct_stream, gateway_stream, new_session  # noqa: E402
from bench.procs import Stack, _wait_http, free_port, gateway_config  # noqa: E402
from bench.procstat import cpu_seconds, percentile  # noqa: E402


async def main(other: str, rounds: int, loop_choice: str, chunk_seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="kimi-ab-") as workdir:
        async with Stack(workdir, loop_choice, accounts=256) as stack, new_session() as s:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            config = os.path.join(workdir, "other.toml")
            with open(config, "w") as f:
                f.write(gateway_config(stack.emu_url, port, stack.gw_tokens,
                                       os.path.join(workdir, "other.sqlite3")))
            proc = await stack._spawn("other", [sys.executable,
                                                os.path.join(other, "gateway.py"), "-c", config,
                                                "--loop", loop_choice])
            await _wait_http(url + "/ping")
            if stack.cpus is not None:
                os.sched_setaffinity(proc.pid, stack.cpus[0])
            gateways = {"this": (stack.gw_url, stack.gateway_pid), "other": (url, proc.pid)}

            async def one(mode: str) -> float:
                if mode in ("direct", "proxy"):
                    target = stack.emu_url if mode == "direct" else stack.null_url
                    res = await direct_stream(s, target, stack.direct_tokens[0], phases.PROMPT)
                else:
                    res = await gateway_stream(s, gateways[mode][0], phases.PROMPT)
                if not res.ok or res.ttfc is None:
                    raise RuntimeError(f"a {mode} stream failed")
                return res.ttfc

            modes = ["direct", "proxy", "this", "other"]
            for mode in modes[2:]:                      # warm every account's connection
                await asyncio.gather(*(one(mode) for _ in range(64)))
            await asyncio.sleep(0.5)
            got: dict[str, list[float]] = {m: [] for m in modes}
            cpu0 = {m: cpu_seconds(pid) for m, (_, pid) in gateways.items()}
            for r in range(rounds):
                for mode in modes[r % 4:] + modes[:r % 4]:
                    got[mode].append(await one(mode))
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)                    # chat deletions land
            cpu = {m: (cpu_seconds(pid) - cpu0[m]) / rounds for m, (_, pid) in gateways.items()}
            per_chunk: dict[str, list[float]] = {m: [] for m in gateways}
            for mode in ("this", "other", "other", "this") if chunk_seconds else ():
                target = copy.copy(stack)
                target.gw_url, target.gateway_pid = gateways[mode]
                run = await saturation.streams(target, s, phases.LONG_PROMPT, chunk_seconds, 1)
                per_chunk[mode].append(run["us_per_chunk"])
    proxy = {p: percentile(got["proxy"], p) for p in (50, 90)}
    print(f"{rounds} rounds, gateways on {loop_choice}, load {os.getloadavg()[0]:.2f}; "
          f"direct p50 {percentile(got['direct'], 50) * 1000:.2f} ms, "
          f"proxy p50 {proxy[50] * 1000:.2f} ms")
    for mode in ("this", "other"):
        over = {p: (percentile(got[mode], p) - proxy[p]) * 1000 for p in (50, 90)}
        print(f"  {mode:5s}: over the proxy p50 {over[50]:.2f} ms, p90 {over[90]:.2f} ms; "
              f"CPU per stream {cpu[mode] * 1000:.2f} ms" +
              "".join(f"; {us:.1f} us per streamed chunk" for us in per_chunk[mode]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("other", help="the root of another checkout (its gateway.py)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--chunks", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()
    asyncio.run(main(os.path.abspath(args.other), args.rounds, args.loop, args.chunks))
