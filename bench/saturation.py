"""The gateway at 100% of its core: wrk (bench/loadgen.py) drives it in a closed loop, and
the gateway's own CPU time over the same interval gives the work per chunk and per request."""

from __future__ import annotations

import resource
import time

import aiohttp
import orjson

from . import loadgen
from .clients import CHAT_COMPLETIONS, GATEWAY_HEADERS, gateway_stream
from .procs import Stack
from .procstat import busy_shares, cpu_busy_ticks, cpu_seconds

STREAM_CONNECTIONS, UNARY_CONNECTIONS = 64, 50


def chat_body(prompt: str, stream: bool) -> bytes:
    return orjson.dumps({"model": "kimi", "stream": stream,
                         "messages": [{"role": "user", "content": prompt}]})


async def _body_size(s: aiohttp.ClientSession, url: str, body: bytes) -> int:
    async with s.post(url + CHAT_COMPLETIONS, data=body, headers=GATEWAY_HEADERS) as resp:
        return len(await resp.read())


async def _drive(stack: Stack, s, body: bytes, connections: int, seconds: float) -> dict:
    """wrk against the gateway; the gateway's CPU seconds and busy share over the run. Every
    response must be at least as long as a good one (an in-band error would be shorter)."""
    size = await _body_size(s, stack.gw_url, body)
    await stack.reset()
    emu0, wrk0, machine0 = cpu_seconds(stack.emulator_pid), _children_cpu(), cpu_busy_ticks()
    cpu0, t0 = cpu_seconds(stack.gateway_pid), time.monotonic()
    got = await loadgen.run(stack.gw_url + CHAT_COMPLETIONS, body, connections, seconds,
                            stack.workdir)
    cpu, wall = cpu_seconds(stack.gateway_pid) - cpu0, time.monotonic() - t0
    emu, wrk = cpu_seconds(stack.emulator_pid) - emu0, _children_cpu() - wrk0
    machine = busy_shares(machine0, cpu_busy_ticks())
    await stack.reset()
    if got["bytes"] < got["requests"] * size:
        raise RuntimeError(f"short responses under load: {got}, one good answer is {size} B")
    return {"requests": got["requests"], "cpu_s": cpu, "wall_s": wall, "busy": cpu / wall,
            "emulator_busy": emu / wall, "wrk_busy": wrk / wall,
            "machine_busy": sum(machine.values()) / max(1, len(machine))}


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def streams(stack: Stack, s, prompt: str, seconds: float, frames_per_write: int) -> dict:
    """Long answers streamed by `STREAM_CONNECTIONS` clients. The emulator writes each frame
    on its own (frames_per_write 1: it then costs more per frame than the gateway per chunk,
    and on the harness CPU it is the limit) or several together, as a busy upstream's frames
    share a read."""
    per_answer = (await gateway_stream(s, stack.gw_url, prompt)).chunks
    await stack.knobs(frames_per_write=frames_per_write)
    try:
        run = await _drive(stack, s, chat_body(prompt, True), STREAM_CONNECTIONS, seconds)
    finally:
        await stack.knobs(frames_per_write=1)
    chunks = run["requests"] * per_answer
    return {"chunks": chunks, "per_cpu_s": chunks / run["cpu_s"],
            "per_wall_s": chunks / run["wall_s"], "us_per_chunk": run["cpu_s"] / chunks * 1e6,
            "busy": run["busy"], "emulator_busy": run["emulator_busy"],
            "wrk_busy": run["wrk_busy"], "machine_busy": run["machine_busy"],
            "streams": STREAM_CONNECTIONS,
            "frames_per_write": frames_per_write}


async def unary(stack: Stack, s, prompt: str, seconds: float) -> dict:
    run = await _drive(stack, s, chat_body(prompt, False), UNARY_CONNECTIONS, seconds)
    return {"requests": run["requests"], "per_s": run["requests"] / run["wall_s"],
            "cpu_ms_per_request": run["cpu_s"] / run["requests"] * 1000, "busy": run["busy"],
            "emulator_busy": run["emulator_busy"], "wrk_busy": run["wrk_busy"],
            "machine_busy": run["machine_busy"], "clients": UNARY_CONNECTIONS}
