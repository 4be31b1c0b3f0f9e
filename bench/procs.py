"""Starting and stopping the emulator and gateway processes for one bench run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time

import aiohttp
import orjson

from kimi.emulator import mint_access_token

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_config(emu_url: str, port: int, tokens: list[str], store: str) -> str:
    quoted = ", ".join(f'"{t}"' for t in tokens)
    return (f'[server]\nhost = "127.0.0.1"\nport = {port}\nlog_level = "info"\n\n'
            f'[kimi]\nbase_url = "{emu_url}"\nauth_url = "{emu_url}"\ntokens = [{quoted}]\n\n'
            f'[store]\npath = "{store}"\n')


def placement(kind: str) -> tuple[set[int], set[int]] | None:
    """CPU sets (gateway, harness) for `pinned`: the gateway (and the floor proxy, which
    stands in its place) on the last CPU, the emulator and the bench client on the others, so
    that the load generator does not take the gateway's core; None for `shared`."""
    cpus = sorted(os.sched_getaffinity(0))
    if kind == "shared" or len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


class Stack:
    """Emulator + gateway on loopback; `direct_tokens` are users the gateway does not use."""

    def __init__(self, workdir: str, loop_choice: str, accounts: int, pin: str = "pinned"):
        self.workdir, self.loop_choice, self.accounts = workdir, loop_choice, accounts
        self.cpus = placement(pin)
        os.makedirs(workdir, exist_ok=True)
        self.procs: list[asyncio.subprocess.Process] = []
        emu_port, ctl_port, gw_port, null_port = free_port(), free_port(), free_port(), free_port()
        self.emu_url = f"http://127.0.0.1:{emu_port}"
        self.control_url = f"http://127.0.0.1:{ctl_port}"
        self.gw_url = f"http://127.0.0.1:{gw_port}"
        self.null_url = f"http://127.0.0.1:{null_port}"
        self._ports = (emu_port, ctl_port, gw_port, null_port)
        self.gw_tokens = [mint_access_token(f"user-{i}") for i in range(accounts)]
        self.direct_tokens = [mint_access_token(f"direct-{i}") for i in range(accounts)]
        self.gateway_pid = self.emulator_pid = 0

    async def __aenter__(self) -> "Stack":
        emu_port, ctl_port, gw_port, null_port = self._ports
        self.control = aiohttp.ClientSession()
        bench = os.path.join(ROOT, "bench")
        await self._spawn("emulator", [sys.executable, os.path.join(bench, "emulator_proc.py"),
                                       "--port", str(emu_port), "--control-port", str(ctl_port),
                                       *(["--uvloop"] if _has_uvloop() else [])])
        self.emulator_pid = self.procs[-1].pid
        await _wait_http(self.control_url + "/calls")
        config = os.path.join(self.workdir, "config.toml")
        with open(config, "w") as f:
            f.write(gateway_config(self.emu_url, gw_port, self.gw_tokens,
                                   os.path.join(self.workdir, "store.sqlite3")))
        proc = await self._spawn("gateway", [sys.executable, os.path.join(ROOT, "gateway.py"),
                                             "-c", config, "--loop", self.loop_choice])
        self.gateway_pid = proc.pid
        await _wait_http(self.gw_url + "/ping")
        # The floor: a do-nothing proxy on the gateway's event loop.
        use_uvloop = self.loop_choice == "uvloop" or (self.loop_choice == "auto" and _has_uvloop())
        bench = os.path.join(ROOT, "bench")
        await self._spawn("null_proxy", [sys.executable, os.path.join(bench, "null_proxy.py"),
                                         "--port", str(null_port), "--upstream", self.emu_url,
                                         *(["--uvloop"] if use_uvloop else [])])
        await _wait_http(self.null_url + "/ping")
        if self.cpus is not None:
            gateway_cpus, harness_cpus = self.cpus
            os.sched_setaffinity(0, harness_cpus)
            for proc, name in zip(self.procs, ("emulator", "gateway", "null_proxy")):
                os.sched_setaffinity(proc.pid, gateway_cpus if name != "emulator" else harness_cpus)
        return self

    async def _spawn(self, name: str, argv: list[str]) -> asyncio.subprocess.Process:
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log, cwd=ROOT)
        self.procs.append(proc)
        return proc

    async def __aexit__(self, *exc) -> None:
        await self.control.close()
        if self.cpus is not None:
            os.sched_setaffinity(0, set().union(*self.cpus))
        for proc in reversed(self.procs):
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

    async def knobs(self, **values: float) -> None:
        async with self.control.post(self.control_url + "/knobs", data=orjson.dumps(values)) as r:
            r.raise_for_status()

    async def calls(self) -> list[tuple[str, float]]:
        async with self.control.get(self.control_url + "/calls") as r:
            return [tuple(c) for c in orjson.loads(await r.read())]

    async def connections(self) -> int:
        """Client connections the emulator has seen carry a request, since it started."""
        async with self.control.get(self.control_url + "/connections") as r:
            return orjson.loads(await r.read())["connections"]

    async def reset(self) -> None:
        async with self.control.post(self.control_url + "/reset") as r:
            r.raise_for_status()

    def gateway_log(self) -> str:
        with open(os.path.join(self.workdir, "gateway.log"), errors="replace") as f:
            return f.read()


async def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up in {timeout:g}s")
            await asyncio.sleep(0.05)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
