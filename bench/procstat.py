"""CPU time and memory of another process, read from /proc (Linux), no psutil needed."""

from __future__ import annotations

import math
import os

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces; fields after it are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_busy_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU of the machine: (busy ticks, all ticks) since boot, from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = list(map(int, values))
                idle = ticks[3] + ticks[4]          # idle + iowait
                out[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return out


def busy_shares(before: dict, after: dict) -> dict[int, float]:
    """Each CPU's busy share between two `cpu_busy_ticks` readings (all processes)."""
    return {cpu: (after[cpu][0] - before[cpu][0]) / max(1, after[cpu][1] - before[cpu][1])
            for cpu in after if cpu in before}


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of `pid`, in MB (10^6 bytes)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024 / 1e6
    return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU time of the processes `roots` and all their descendants (e.g. PostgreSQL's
    backends), as they are now; a process that vanished meanwhile counts as nothing."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(name))
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:         # a root may also be another root's child
            seen.add(pid)
            todo += children.get(pid, [])
    total = 0.0
    for pid in seen:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total
