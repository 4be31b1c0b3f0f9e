"""Memory of the gateway for compressed request bodies: python bench/body_bomb.py [--gb 1]

Starts a gateway process with `max_body_mb = 8` and, one at a time on a fresh gateway, sends
(a) a decompression bomb per encoding (zstd, gzip, deflate): a JSON prefix and then GBs of
zeros, compressed to a few hundred KB (zstd) or about 1 MB (gzip), and (b) a legitimate
compressed body just under the limit. Prints the answer's status, the gateway's peak RSS
over its idle RSS (VmHWM from /proc) and the time to the answer. The bomb must stop at the
limit: 413, and a peak in the order of the limit, not of the decompressed size. Linux only.
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
from bench.files_rss import MB, free_port, memory, start, wait_up  # noqa: E402
from kimi.emulator import mint_access_token  # noqa: E402

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


async def one(name: str, encoding: str, body: bytes, tmp: str) -> dict:
    port = free_port()
    config = Path(tmp) / f"{name}.toml"
    config.write_text(f'[server]\nport = {port}\nlog_level = "warning"\nmax_body_mb = {LIMIT_MB}\n'
                      f'[kimi]\nbase_url = "http://127.0.0.1:9"\nauth_url = "http://127.0.0.1:9"\n'
                      f'tokens = ["{mint_access_token("bench")}"]\n'
                      f'[store]\npath = "{tmp}/{name}.sqlite3"\n')
    gw = start(["gateway.py", "-c", str(config)])
    try:
        await wait_up(f"http://127.0.0.1:{port}/ping", gw)
        before = memory(gw.pid)
        started = time.monotonic()
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{port}/v1/responses", data=body,
                              headers={"Content-Encoding": encoding,
                                       "Content-Type": "application/json"}) as r:
                await r.read()
                status = r.status
        seconds = time.monotonic() - started
        after = memory(gw.pid)
        return {"name": name, "status": status, "sent": len(body), "seconds": seconds,
                "base": before["VmRSS"], "peak": after["VmHWM"]}
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
    print(f"limit: {LIMIT_MB} MB; bombs: {args.gb:g} GB decompressed")
    print(f"{'body':<13}{'sent':>10}{'status':>8}{'idle RSS':>10}{'peak RSS':>10}"
          f"{'peak-idle':>11}{'time':>8}")
    for r in results:
        print(f"{r['name']:<13}{r['sent'] / 1024:>8.0f}KB{r['status']:>8}{r['base'] / MB:>8.1f}MB"
              f"{r['peak'] / MB:>8.1f}MB{(r['peak'] - r['base']) / MB:>9.1f}MB"
              f"{r['seconds']:>7.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
