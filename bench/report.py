"""The results table, and writing it into BENCHMARKS.md between the bench markers."""

from __future__ import annotations

import os
import platform
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _ms(x: float) -> str:
    return f"{x:.2f} ms"


def _pair(r: dict, key: str) -> str:
    return f"{_ms(r[f'{key}_p50'])} / {_ms(r[f'{key}_p99'])}"


def rows(r: dict) -> list[tuple[str, str, str]]:
    """(figure, target, value) for one loop's results."""
    out = []
    for conc in sorted(int(k.split("_")[1]) for k in r if k.startswith("ttfc_")):
        t = r[f"ttfc_{conc}"]
        target = {1: "p50 <= 1 ms"}.get(conc, "p99 <= 5 ms" if conc >= 200 else "")
        out.append((f"added time to first content chunk, burst of {conc} simultaneous "
                    "stream(s), p50 / p99",
                    target, _pair(t, "added")))
        out += _floor_rows(t, "p50 <= 0.5 ms" if conc == 1 else "")
    for conc in sorted(int(k.split("_")[1]) for k in r if k.startswith("steady_")):
        t = r[f"steady_{conc}"]
        out.append((f"same, {conc} streams always in flight, upstream piece every 10 ms, p50 / p99",
                    "p99 <= 5 ms" if conc >= 200 else "", _pair(t, "added")))
        out += _floor_rows(t, "")
    sc, u, m, rt, pc = r["stream_cpu"], r["unary"], r["memory"], r["roundtrips"], r["paced"]
    cr, cp = r["conn_rate"], r["conn_paced"]
    out += [_saturation_row(sc), _saturation_row(r["stream_cpu_4"]),
        (f"non-streaming requests per second (wrk, {u['clients']:.0f} clients)", "",
         f"{u['per_s']:,.0f} ({u['cpu_ms_per_request']:.2f} ms gateway CPU each; "
         f"{_busy(u)})"),
        (f"new upstream connections per request, {cr['rate']:.0f} requests/s "
         f"({cr['requests']:.0f} requests)", "0", f"{cr['per_request']:.3f} ({cr['new']:.0f})"),
        (f"new upstream connections per request, one every {cp['gap_s']:.0f} s over "
         f"{cp['accounts']:.0f} accounts ({cp['requests']:.0f} requests)", "0",
         f"{cp['per_request']:.2f} ({cp['new']:.0f})"),
        (f"resident memory idle, {m['accounts']} accounts configured", "", f"{m['idle']:.1f} MB"),
        (f"resident memory with {m['streams']} open slow streams (peak RSS / VmHWM)",
         "<= 120 MB", f"{m['open_rss']:.1f} MB / {m['hwm']:.1f} MB"),
        ("sequential upstream calls before the first token (warm, stateless)", "exactly 1",
         f"{rt['max_calls']} ({', '.join(rt['paths'])})"),
        ("  added time to first chunk with 30 ms per upstream call, p50 (over the proxy)",
         "~0 (1 call)", f"{_ms(rt['added_p50'])} ({_ms(rt['over_null_p50'])}; "
                        f"gateway {_ms(rt['gateway_p50'])})"),
        ("time to first chunk, upstream piece every 10 ms (direct / proxy / gateway), p50", "",
         f"{_ms(pc['direct_p50'])} / {_ms(pc['null_p50'])} / {_ms(pc['gateway_p50'])}"),
    ]
    return out


def _saturation_row(sc: dict) -> tuple[str, str, str]:
    frames = sc["frames_per_write"]
    upstream = "one frame per upstream write" if frames == 1 else f"{frames:.0f} frames per write"
    return (f"streamed chunks per gateway CPU-second (wrk, {sc['streams']:.0f} streams, "
            f"{upstream})", ">= 20,000",
            f"{sc['per_cpu_s']:,.0f} ({sc['us_per_chunk']:.1f} us/chunk; "
            f"{sc['per_wall_s']:,.0f}/s wall; {_busy(sc)})")


def _busy(r: dict) -> str:
    """Who had how much CPU during a saturation run (of one CPU each; the machine: of all)."""
    return (f"busy: gateway {r['busy']:.0%}, emulator {r['emulator_busy']:.0%}, wrk "
            f"{r['wrk_busy']:.0%}, whole machine {r['machine_busy']:.0%}")


def _floor_rows(t: dict, target: str) -> list[tuple[str, str, str]]:
    return [(f"  (direct / proxy / gateway, p50, {t['samples']} samples)", "",
             f"{_ms(t['direct_p50'])} / {_ms(t['null_p50'])} / {_ms(t['gateway_p50'])}"),
            ("  floor: added by a do-nothing aiohttp proxy, p50 / p99", "",
             _pair(t, "null_added")),
            ("  **gateway over that proxy**, p50 / p99", target, _pair(t, "over_null"))]


def median_merge(runs: list[dict]) -> dict:
    """One result dict from several runs: the median of every number, the first of the rest."""
    out = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(first, dict):
            out[key] = median_merge(values)
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            out[key] = statistics.median(values)
        else:
            out[key] = first
    return out


def render(results: dict, quick: bool = False, runs: int = 1, placement: str = "pinned",
           load: tuple[float, float] | None = None) -> str:
    loops = list(results)
    per = {loop: rows(results[loop]) for loop in loops}
    first = per[loops[0]]
    head = "| figure | target | " + " | ".join(f"gateway on {l}" for l in loops) + " |"
    lines = [head, "|" + "---|" * (2 + len(loops))]
    for i, (figure, target, _) in enumerate(first):
        values = " | ".join(per[l][i][2] for l in loops)
        lines.append(f"| {figure} | {target} | {values} |")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    flags = ((" --quick" if quick else "") + (f" --runs {runs}" if runs > 1 else "")
             + (" --placement shared" if placement == "shared" else ""))
    where = ("the gateway pinned to one CPU, emulator and bench client on the other(s)"
             if placement == "pinned" and os.cpu_count() > 1 else
             "the gateway, emulator and bench client sharing every CPU")
    note = (f"Measured {stamp} by `python bench/run.py{flags}` on {os.cpu_count()} CPU(s), "
            f"Python {platform.python_version()}; {where}; emulator and bench client on uvloop "
            "in every column, wrk (saturation rows) beside them"
            + (f"; each figure the median of {runs} runs" if runs > 1 else "")
            + (f"; the machine's 1-minute load average was {load[0]:.2f} before the run and "
               f"{load[1]:.2f} after it (other work shares it)" if load else "") + ".")
    return note + "\n\n" + "\n".join(lines) + "\n"


def write_benchmarks(table: str, path: str | None = None, markers=(BEGIN, END),
                     heading: str = "") -> str:
    """Replace the block between `markers` (added at the end, under `heading`, if missing)."""
    path = path or os.path.join(ROOT, "BENCHMARKS.md")
    begin, end = markers
    block = f"{begin}\n{table}{end}"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + heading + block + "\n"
    with open(path, "w") as f:
        f.write(text)
    return path
