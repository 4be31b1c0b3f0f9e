"""One replica versus two behind nginx, and what the shared state costs.

`python bench/run.py --replicas [--quick]` (or this file). Starts the emulator, the do-nothing
proxy, redis-server and PostgreSQL (bench/servers.py) on loopback, then for each set-up:

    sqlite x1   one gateway, the default (SQLite, in-process locks)
    shared x1   one gateway on PostgreSQL + Redis
    shared x2   two gateways on PostgreSQL + Redis behind nginx (deploy/nginx-replicas.conf)

one stream at a time, bursts of 50 and 200 simultaneous streams (added time to first chunk over the emulator
direct, p50/p99, with the do-nothing proxy at the same concurrency in the same minute) and
streams per second with 50 always in flight. For the bursts of 200 through the gateway it
also counts the CPU time each burst took, of all the bench's processes (emulator, client,
gateways, nginx, PostgreSQL with its backends, Redis; other work on the machine is not
counted) and of the gateways alone: when all of them share the same few cores, their CPU
time divided by the cores is the shortest a burst can take, however many replicas serve it. The table goes into BENCHMARKS.md between the replicas markers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.clients import direct_stream, gateway_stream, new_session  # noqa: E402
from bench.phases import PROMPT  # noqa: E402
from bench.procs import ROOT, _has_uvloop, _wait_http, free_port, gateway_config  # noqa: E402
from bench.procstat import cpu_seconds, percentile, tree_cpu_seconds  # noqa: E402
from bench.report import write_benchmarks  # noqa: E402
from bench.servers import Postgres, RedisServer  # noqa: E402
from kimi.emulator import mint_access_token  # noqa: E402

BEGIN, END = "<!-- replicas:begin -->", "<!-- replicas:end -->"
NGINX_MAIN = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    include {tmp}/site.conf;
}}
"""


class Procs:
    def __init__(self, workdir: str):
        self.workdir, self.procs = workdir, []

    async def spawn(self, name: str, argv: list[str]):
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log, cwd=ROOT)
        self.procs.append(proc)
        return proc

    async def stop(self, procs=None) -> None:
        for proc in reversed(procs or self.procs):
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def gateways(procs: Procs, emu_url: str, tokens: list[str], count: int,
                   shared: str) -> tuple[list, str, list[str]]:
    """`count` gateways (and nginx before two); returns their processes, the URL to use and
    each gateway's own URL."""
    started, urls = [], []
    for i in range(count):
        port = free_port()
        config = os.path.join(procs.workdir, f"gw-{i}.toml")
        with open(config, "w") as f:
            f.write(gateway_config(emu_url, port, tokens,
                                   os.path.join(procs.workdir, f"store-{i}.sqlite3")) + shared)
        started.append(await procs.spawn(f"gateway-{i}", [
            sys.executable, os.path.join(ROOT, "gateway.py"), "-c", config]))
        urls.append(f"http://127.0.0.1:{port}")
    for url in urls:
        await _wait_http(url + "/ping")
    if count == 1:
        return started, urls[0], urls
    port = free_port()
    site = open(os.path.join(ROOT, "deploy", "nginx-replicas.conf")).read()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    for name, url in zip(("kimi-a", "kimi-b"), urls):
        site = site.replace(f"server {name}:8000 ", f"server {url.removeprefix('http://')} ")
    with open(os.path.join(procs.workdir, "site.conf"), "w") as f:
        f.write(site)
    with open(os.path.join(procs.workdir, "nginx.conf"), "w") as f:
        f.write(NGINX_MAIN.format(tmp=procs.workdir,
                                  user="user root;" if os.geteuid() == 0 else ""))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    started.append(await procs.spawn("nginx", [nginx, "-p", procs.workdir, "-e",
                                               os.path.join(procs.workdir, "error.log"), "-c",
                                               os.path.join(procs.workdir, "nginx.conf")]))
    await _wait_http(f"http://127.0.0.1:{port}/ping")
    return started, f"http://127.0.0.1:{port}", urls


async def burst(s, mode: str, url: str, direct: list[str], conc: int) -> list[float]:
    if mode == "g":
        jobs = [gateway_stream(s, url, PROMPT) for _ in range(conc)]
    else:
        jobs = [direct_stream(s, url, direct[i], PROMPT) for i in range(conc)]
    results = await asyncio.gather(*jobs)
    bad = sum(1 for r in results if not r.ok or r.ttfc is None)
    if bad:
        raise RuntimeError(f"{bad} of {conc} {mode} streams failed")
    return [r.ttfc for r in results]


async def measure(s, urls: dict, direct: list[str], quick: bool, pids: list[int],
                  everything: list[int]) -> dict:
    """`pids`: the gateways; `everything`: the bench's processes (their children counted too)."""
    out = {}
    for conc, rounds in ((1, 20 if quick else 60), (50, 2 if quick else 6),
                         (200, 2 if quick else 6)):
        got = {"d": [], "g": [], "n": []}
        cpu = {"wall": [], "bench": [], "gateways": []}
        for r in range(rounds):
            for mode in ("d", "g", "n")[r % 3:] + ("d", "g", "n")[:r % 3]:
                if conc == 200 and mode == "g":
                    before = (time.monotonic(), tree_cpu_seconds(everything),
                              sum(map(cpu_seconds, pids)))
                got[mode] += await burst(s, mode, urls[mode], direct, conc)
                if conc == 200 and mode == "g":
                    after = (time.monotonic(), tree_cpu_seconds(everything),
                             sum(map(cpu_seconds, pids)))
                    for key, b, a in zip(cpu, before, after):
                        cpu[key].append(a - b)
                await asyncio.sleep(0.3 if conc > 1 else 0.02)
        for p in (50, 99):
            d = percentile(got["d"], p) * 1000
            out[f"g{conc}_p{p}"] = percentile(got["g"], p) * 1000 - d
            out[f"n{conc}_p{p}"] = percentile(got["n"], p) * 1000 - d
    for key, values in cpu.items():
        out[f"burst200_{key}_ms"] = percentile(values, 50) * 1000

    out["streams_per_s"] = await streams_per_second(s, urls["g"], 2.0 if quick else 6.0)
    return out


async def streams_per_second(s, url: str, seconds: float, workers: int = 50) -> float:
    """`workers` loops, each starting the next stream as one ends, for `seconds`."""
    deadline, done = time.monotonic() + seconds, 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            if not (await gateway_stream(s, url, PROMPT)).ok:
                raise RuntimeError("a stream failed in the throughput run")
            done += 1
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.monotonic() - t0)


async def run(quick: bool, workdir: str) -> dict:
    procs = Procs(workdir)
    redis, pg = RedisServer(), Postgres()
    redis.start()
    pg.start()
    accounts = 200
    tokens = [mint_access_token(f"user-{i}") for i in range(accounts)]
    direct = [mint_access_token(f"direct-{i}") for i in range(accounts)]
    emu_port, ctl_port, null_port = free_port(), free_port(), free_port()
    emu_url = f"http://127.0.0.1:{emu_port}"
    uv = ["--uvloop"] if _has_uvloop() else []
    results = {}
    try:
        await procs.spawn("emulator", [sys.executable, os.path.join(ROOT, "bench", "emulator_proc.py"),
                                       "--port", str(emu_port), "--control-port", str(ctl_port), *uv])
        await procs.spawn("null_proxy", [sys.executable, os.path.join(ROOT, "bench", "null_proxy.py"),
                                         "--port", str(null_port), "--upstream", emu_url, *uv])
        await _wait_http(f"http://127.0.0.1:{ctl_port}/calls")
        await _wait_http(f"http://127.0.0.1:{null_port}/ping")
        for name, count, shared in (("sqlite x1", 1, False), ("shared x1", 1, True),
                                    ("shared x2", 2, True)):
            extra = ""
            if shared:
                redis.flush()
                extra = (f'\nurl = "{pg.new_database()}"\n\n[coordination]\n'
                         f'redis_url = "{redis.url}"\n')
            started, url, own = await gateways(procs, emu_url, tokens, count, extra)
            async with new_session() as s:
                for each in own:        # every replica has used every account once
                    await burst(s, "g", each, direct, accounts)
                results[name] = await measure(
                    s, {"d": emu_url, "n": f"http://127.0.0.1:{null_port}", "g": url}, direct,
                    quick, [p.pid for p in started[:count]],
                    [os.getpid(), redis.proc.pid, pg.proc.pid] + [p.pid for p in procs.procs
                                                                  if p.returncode is None])
            print(f"  {name}: {results[name]}", flush=True)
            await procs.stop(started)
            await asyncio.sleep(0.5)
    except RuntimeError:
        _print_problems(workdir)
        raise
    finally:
        await procs.stop()
        redis.stop()
        pg.remove()
    return results


def _print_problems(workdir: str) -> None:
    """The gateways' warnings and errors, for a run that failed (the workdir goes away)."""
    for name in sorted(os.listdir(workdir)):
        if name.startswith("gateway-") and name.endswith(".log"):
            with open(os.path.join(workdir, name), errors="replace") as f:
                bad = [line for line in f if " WARNING " in line or " ERROR " in line
                       or "status=5" in line]
            print(f"{name}: {len(bad)} problem lines", *bad[:8], sep="\n  ")


def render(results: dict, quick: bool) -> str:
    rows = [("added time to first chunk, one at a time, p50 (ms)", "g1_p50", "n1_p50"),
            ("added time to first chunk, burst of 50, p50 (ms)", "g50_p50", "n50_p50"),
            ("added time to first chunk, burst of 50, p99 (ms)", "g50_p99", "n50_p99"),
            ("added time to first chunk, burst of 200, p50 (ms)", "g200_p50", "n200_p50"),
            ("added time to first chunk, burst of 200, p99 (ms)", "g200_p99", "n200_p99")]
    names = list(results)
    cpus = os.cpu_count() or 1
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f"{' (--quick)' if quick else ''}, {os.cpu_count()} CPUs shared by every process",
             "(emulator, client, gateways, nginx, PostgreSQL, Redis); 200 accounts. Each column",
             "is timed against the emulator direct in the same minute; the do-nothing proxy",
             f"column was measured beside `{names[0]}`. The CPU time of a burst, divided by the",
             f"{cpus} CPUs, is the shortest it could take here.", "",
             "| figure | " + " | ".join(names) + " | do-nothing proxy |",
             "|---|" + "---:|" * (len(names) + 1)]
    for label, key, floor in rows:
        cells = [f"{results[n][key]:.1f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {results[names[0]][floor]:.1f} |")
    for label, key in (("burst of 200 streams, whole burst: wall time, median (ms)", "wall"),
                       ("  CPU time of all the bench's processes in it (ms)", "bench"),
                       ("  of that, the gateway(s) (ms)", "gateways")):
        cells = [f"{results[n][f'burst200_{key}_ms']:.0f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " | |")
    cells = [f"{results[n]['streams_per_s']:.0f}" for n in names]
    lines.append("| streams per second, 50 in flight | " + " | ".join(cells) + " | |")
    return "\n".join(lines) + "\n"


def main(quick: bool, write_file: bool = True) -> int:
    with tempfile.TemporaryDirectory(prefix="kimi-bench-replicas-") as workdir:
        results = asyncio.run(run(quick, workdir))
    table = render(results, quick)
    print(table)
    if write_file:
        write_benchmarks(table, markers=(BEGIN, END), heading="## Several replicas\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main("--quick" in sys.argv, "--no-write" not in sys.argv))
