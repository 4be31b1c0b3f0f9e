"""Peak memory of the gateway for one large document: python bench/files_rss.py [--mb 50]

Starts the emulator and, per scenario, a fresh gateway (each its own process) and a file
server in this process, sends one chat request carrying the document, and reads the gateway's
VmHWM (peak RSS) from /proc. Scenarios: the document as a URL (streamed to an unlinked
temporary file, then streamed to Kimi) and inline as base64 in each of the three forms
(OpenAI's file_data as a data URL and as raw base64, the seeds' file_url and image_url data
URLs): the body is scanned as it
streams in and the document decoded into a temporary file, so the JSON parsed is small. The
last scenario wraps the base64 in lines, which the scanner leaves to the old path.
Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kimi.emulator import mint_access_token  # noqa: E402

MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


async def wait_up(url: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            if proc.poll() is not None:
                raise SystemExit(f"process exited early: {proc.args}")
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_gateway(name: str, tmp: str, upstream: str, server: str = "",
                  extra: str = "") -> tuple[int, subprocess.Popen]:
    """A gateway process with its own config in `tmp` (`server`: more [server] lines;
    `extra`: more sections); its port and process."""
    port = free_port()
    config = Path(tmp) / f"{name}.toml"
    config.write_text(f'[server]\nport = {port}\nlog_level = "warning"\n{server}\n'
                      f'[kimi]\nbase_url = "{upstream}"\nauth_url = "{upstream}"\n'
                      f'tokens = ["{mint_access_token("bench")}"]\n'
                      f'[store]\npath = "{tmp}/{name}.sqlite3"\n{extra}')
    return port, start(["gateway.py", "-c", str(config)])


async def run_scenario(name: str, body: bytes, emu_url: str, tmp: str, size: int) -> dict:
    port, gw = start_gateway(name, tmp, emu_url, extra=f'[files]\nallow_hosts = ["127.0.0.1"]\n'
                                                    f'max_mb = {size // MB + 10}\n')
    try:
        await wait_up(f"http://127.0.0.1:{port}/ping", gw)
        before = memory(gw.pid)
        started = time.monotonic()
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                              headers={"Content-Type": "application/json"}) as r:
                answer = await r.read()
                if r.status != 200:
                    raise SystemExit(f"{name}: HTTP {r.status} {answer[:300]!r}")
        after = memory(gw.pid)
        return {"name": name, "seconds": time.monotonic() - started, "base": before["VmRSS"],
                "peak": after["VmHWM"]}
    finally:
        gw.terminate()
        gw.wait(10)


def request_body(parts: list) -> bytes:
    return orjson.dumps({"model": "kimi", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Summarize."}, *parts]}]})


def scenarios(document: bytes, file_port: int):
    """(name, content part); bodies are built one at a time so that only one is alive."""
    yield "url", {"type": "file", "file_url": {"url": f"http://127.0.0.1:{file_port}/report.pdf"}}
    b64 = base64.b64encode(document).decode()
    yield "file_data", {"type": "file", "file": {"file_data": "data:application/pdf;base64," + b64,
                                                 "filename": "report.pdf"}}
    yield "file_raw", {"type": "file", "file": {"file_data": b64, "filename": "report.pdf"}}
    yield "file_url", {"type": "file", "file_url": {"url": "data:application/pdf;base64," + b64}}
    yield "image_url", {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64}}
    # Not the plain form (line breaks): given back as text and parsed whole, as before.
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    yield "wrapped", {"type": "file", "file_url": {"url": "data:application/pdf;base64," + wrapped}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    size = args.mb * MB
    document = os.urandom(size)     # incompressible, like a real PDF
    files = web.Application()
    files.router.add_get("/report.pdf", lambda r: web.Response(body=document,
                                                               content_type="application/pdf"))
    runner = web.AppRunner(files)
    await runner.setup()
    file_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", file_port).start()
    emu_port = free_port()
    emu = start(["-m", "kimi.emulator", "--port", str(emu_port)])
    emu_url = f"http://127.0.0.1:{emu_port}"
    try:
        await wait_up(emu_url + "/", emu)
        with tempfile.TemporaryDirectory() as tmp:
            results = []
            for name, part in scenarios(document, file_port):
                results.append(await run_scenario(name, request_body([part]), emu_url, tmp, size))
    finally:
        emu.terminate()
        emu.wait(10)
        await runner.cleanup()
    print(f"document: {args.mb} MB")
    print(f"{'scenario':<11}{'idle RSS':>10}{'peak RSS':>10}{'peak-idle':>11}{'x doc':>7}{'time':>8}")
    for r in results:
        extra = r["peak"] - r["base"]
        print(f"{r['name']:<11}{r['base'] / MB:>8.1f}MB{r['peak'] / MB:>8.1f}MB"
              f"{extra / MB:>9.1f}MB{extra / size:>7.2f}{r['seconds']:>7.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
