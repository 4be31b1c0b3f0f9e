"""Where the gateway's CPU goes: `python bench/profile.py --py-spy PATH [--seconds 15]`.

Starts the bench's processes (bench/procs.py; the gateway on asyncio, pinned), records the
gateway with py-spy (`pip install py-spy` in a venv of its own) while the bench client sends
one stream at a time, then while wrk sends non-streaming requests, and prints for each the
functions with the largest own and inclusive share of the gateway's busy samples (samples
waiting in the event loop's poll are idle and left out).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import loadgen, phases, saturation  # noqa: E402
from bench.clients import CHAT_COMPLETIONS, gateway_stream, new_session  # noqa: E402
from bench.procs import Stack  # noqa: E402

# Leaves that are waiting, not working: the event loop's poll, an idle worker thread's queue.
IDLE_LEAVES = (".select (selectors.py", "_worker (concurrent/futures/thread.py:81)")


def summarize(raw: str, top: int = 18) -> str:
    """Own and inclusive shares of busy samples, from py-spy's raw (collapsed) output."""
    own, incl, busy = collections.Counter(), collections.Counter(), 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f.strip() for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames or any(idle in frames[-1] for idle in IDLE_LEAVES):
            continue
        n = int(count)
        busy += n
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    lines = [f"{busy} busy samples", "", "own share | function", "---|---"]
    lines += [f"{n / busy:6.1%} | {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive share | function", "---|---"]
    lines += [f"{n / busy:6.1%} | {f}" for f, n in incl.most_common(top + 12)]
    return "\n".join(lines)


async def record(py_spy: str, pid: int, seconds: float, out: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        py_spy, "record", "-p", str(pid), "-r", "500", "-d", str(int(seconds)), "--nonblocking",
        "--format", "raw", "-o", out, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)


async def main(py_spy: str, seconds: float, keep: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="kimi-profile-") as workdir:
        async with Stack(workdir, "asyncio", accounts=256) as stack, new_session() as s:
            for _ in range(20):
                await gateway_stream(s, stack.gw_url, phases.PROMPT)
            one = os.path.join(workdir, "one.txt")
            spy = await record(py_spy, stack.gateway_pid, seconds, one)
            deadline = time.monotonic() + seconds + 1
            while time.monotonic() < deadline:
                await gateway_stream(s, stack.gw_url, phases.PROMPT)
                await asyncio.sleep(0.005)
            await spy.wait()
            unary = os.path.join(workdir, "unary.txt")
            spy = await record(py_spy, stack.gateway_pid, seconds, unary)
            await loadgen.run(stack.gw_url + CHAT_COMPLETIONS,
                              saturation.chat_body(phases.PROMPT, False), 50, seconds - 1,
                              workdir)
            await spy.wait()
            for title, path in (("one stream at a time", one), ("non-streaming, wrk", unary)):
                with open(path) as f:
                    raw = f.read()
                print(f"## {title}\n\n{summarize(raw)}\n", flush=True)
                if keep:
                    with open(os.path.join(keep, os.path.basename(path)), "w") as f:
                        f.write(raw)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--keep", help="a folder to keep py-spy's raw stacks in")
    args = parser.parse_args()
    asyncio.run(main(args.py_spy, args.seconds, args.keep))
