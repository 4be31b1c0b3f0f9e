"""A load generator that is not the bottleneck: `wrk` (C, one epoll thread), from Debian's
`wrk` package (`apt-get install wrk`).

The bench's Python client tops out near 20,000 chunks a second, so with it the gateway never
got past about a third of its core. wrk reads each response to its end (chunked SSE
included) without parsing the events, at a small fraction of the gateway's cost per byte;
the chunks are then the completed responses times the chunks of one answer, which the Python
client counts once for the same request (every answer to it is the same).
"""

from __future__ import annotations

import asyncio
import os
import shutil

import orjson

# wrk's Lua hooks: the request, and one JSON line with the totals at the end.
SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {{"requests": %d, "bytes": %d, "us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout))
end
"""


def available() -> str | None:
    return shutil.which("wrk")


def lua_string(data: bytes) -> str:
    """`data` as a Lua string literal (decimal escapes: safe for any byte)."""
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def parse_result(output: str) -> dict:
    line = next(ln for ln in output.splitlines() if ln.startswith("RESULT "))
    return orjson.loads(line[len("RESULT "):])


async def run(url: str, body: bytes, connections: int, seconds: float, workdir: str) -> dict:
    """`connections` keep-alive connections POSTing `body` to `url` in a closed loop for
    `seconds`; returns wrk's totals (requests completed, bytes read, errors by kind)."""
    wrk = available()
    if wrk is None:
        raise RuntimeError("the saturation phases need wrk: apt-get install wrk")
    script = os.path.join(workdir, "post.lua")
    with open(script, "w") as f:
        f.write(SCRIPT.format(body=lua_string(body)))
    proc = await asyncio.create_subprocess_exec(
        wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", script, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0 or "RESULT " not in text:
        raise RuntimeError(f"wrk failed: {text[-500:]}")
    result = parse_result(text)
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    if errors:
        raise RuntimeError(f"wrk saw {errors} failed requests: {result}")
    return result
