"""redis-server and PostgreSQL from the machine (Debian's packages), run on loopback ports for
the tests and the bench of several replicas sharing state: `RedisServer` (no persistence) and
`Postgres` (a throw-away cluster, fsync off)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

from bench.procs import free_port


class Missing(RuntimeError):
    """A server program is not installed."""


INSTALL = {"redis-server": "sudo apt-get install redis-server",
           "postgres": "sudo apt-get install postgresql"}


def find(program: str) -> str:
    """redis-server from PATH; PostgreSQL's programs from Debian's versioned directory."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    path = (found[-1] if found else None) or shutil.which(program) \
        or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        install = INSTALL.get(program, INSTALL["postgres"])
        raise Missing(f"{program} is not installed; run `bash .ci/run` (installs every test "
                      f"tool) or `{install}`")
    return path


def wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {seconds:g}s")


class RedisServer:
    def __init__(self):
        self.binary, self.port = find("redis-server"), free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, "redis-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"FLUSHALL\r\n")
            assert s.recv(64).startswith(b"+OK")


class Postgres:
    """A throw-away cluster (initdb, fsync off), run as the `postgres` user when we are root
    (PostgreSQL refuses to run as root)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="kimi-pg-")
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
        self.proc: subprocess.Popen | None = None
        subprocess.run([find("initdb"), "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres",
                        "--no-sync"], check=True, user=self.user, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [find("postgres"), "-D", f"{self.dir}/data", "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            user=self.user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, "postgres")
        self.psql("SELECT 1")      # accepting connections, not only listening

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT is the fast shutdown (SIGTERM's smart one waits for the clients to leave).
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)

    def psql(self, sql: str, db: str = "postgres") -> None:
        for _ in range(100):
            done = subprocess.run([find("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                   "postgres", "-d", db, "-qAt", "-c", sql],
                                  capture_output=True, timeout=30)
            if done.returncode == 0:
                return
            if b"starting up" not in done.stderr:
                raise RuntimeError(done.stderr.decode())
            time.sleep(0.1)

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
