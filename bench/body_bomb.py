"""Memory of the gateway for large request bodies: python bench/body_bomb.py [--gb 1]

Part 1, compressed bodies:
Starts a gateway process with `max_body_mb = 8` and, one at a time on a fresh gateway, sends
(a) a decompression bomb per encoding (zstd, gzip, deflate): a JSON prefix and then GBs of
zeros, compressed to a few hundred KB (zstd) or about 1 MB (gzip), and (b) a legitimate
compressed body just under the limit. Prints the answer's status, the gateway's peak RSS
over its idle RSS (VmHWM from /proc) and the time to the answer. The bomb must stop at the
limit: 413, and a peak in the order of the limit, not of the decompressed size.

Part 2, concurrent large bodies: four plain JSON chat bodies of 130 MiB sent at once to a
gateway with `max_body_mb = 140`, once with the default `body_memory_mb` (1024) and once with
a budget too large to matter (what the gateway did before it had one). Prints each answer's
status and the peak RSS: the budget must bound the peak, answering 429 to what does not fit.
Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import zlib
from pathlib import Path

import aiohttp
from backports import zstd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.files_rss import MB, memory, start_gateway, wait_up  # noqa: E402

LIMIT_MB = 8
PIECE = 8 * MB


def compressed(encoding: str, prefix: bytes, zeros: int) -> bytes:
    """prefix + `zeros` zero bytes, compressed piece by piece (never all in memory)."""
    if encoding == "zstd":
        c = zstd.ZstdCompressor(level=3)
        flush = lambda: c.flush()    # noqa: E731
    else:
        c = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        flush = c.flush
    out = [c.compress(prefix)]
    for done in range(0, zeros, PIECE):
        out.append(c.compress(bytes(min(PIECE, zeros - done))))
    out.append(flush())
    return b"".join(out)


async def one(name: str, encoding: str | None, body: bytes, tmp: str, copies: int = 1,
              server: str = f"max_body_mb = {LIMIT_MB}") -> dict:
    """Sends `copies` of `body` at once to a fresh gateway with the `server` settings."""
    port, gw = start_gateway(name, tmp, "http://127.0.0.1:9", server)
    try:
        await wait_up(f"http://127.0.0.1:{port}/ping", gw)
        before = memory(gw.pid)
        started = time.monotonic()
        headers = {"Content-Type": "application/json"}
        if encoding:
            headers["Content-Encoding"] = encoding
        async with aiohttp.ClientSession() as s:
            async def post() -> int:
                async with s.post(f"http://127.0.0.1:{port}/v1/responses", data=body,
                                  headers=headers) as r:
                    await r.read()
                    return r.status
            statuses = await asyncio.gather(*(post() for _ in range(copies)))
        seconds = time.monotonic() - started
        after = memory(gw.pid)
        return {"name": name, "status": ",".join(map(str, sorted(statuses))), "sent": len(body),
                "seconds": seconds, "base": before["VmRSS"], "peak": after["VmHWM"]}
    finally:
        gw.terminate()
        gw.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    args = parser.parse_args()
    bomb = int(args.gb * 1024 * MB)
    prefix = b'{"model": "kimi", "input": "'
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for encoding in ("zstd", "gzip", "deflate"):
            body = compressed(encoding, prefix, bomb)
            results.append(await one(f"bomb-{encoding}", encoding, body, tmp))
            del body
        text = b"a" * (LIMIT_MB * MB - 1024)     # a real (if dull) body under the limit
        body = zstd.compress(prefix + text + b'"}')
        results.append(await one("legit-zstd", "zstd", body, tmp))
        del body
        print(f"limit: {LIMIT_MB} MB; bombs: {args.gb:g} GB decompressed")
        report(results)
        big = large_chat_body(130 * MB)
        results = [await one(f"4x130MiB-{name}", None, big, tmp, copies=4,
                             server=f"max_body_mb = 140\nbody_memory_mb = {budget}")
                   for name, budget in (("budget1024", 1024), ("nobudget", 1_000_000))]
        print("\nfour concurrent plain JSON bodies of 130 MiB, max_body_mb = 140")
        report(results)


def large_chat_body(size: int) -> bytes:
    """A chat request of about `size` bytes: many messages of 4 KiB of text each."""
    text = "lorem ipsum dolor sit amet " * 150
    message = b'{"role": "user", "content": "' + text.encode() + b'"}'
    count = size // (len(message) + 1)
    return (b'{"model": "kimi", "input": [' + b",".join([message] * count) + b']}')


def report(results: list[dict]) -> None:
    print(f"{'body':<22}{'sent':>10}{'status':>16}{'idle RSS':>10}{'peak RSS':>10}"
          f"{'peak-idle':>11}{'time':>8}")
    for r in results:
        print(f"{r['name']:<22}{r['sent'] / 1024:>8.0f}KB{r['status']:>16}"
              f"{r['base'] / MB:>8.1f}MB{r['peak'] / MB:>8.1f}MB"
              f"{(r['peak'] - r['base']) / MB:>9.1f}MB{r['seconds']:>7.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
