"""The traffic record: the last API requests, and per-minute figures for the console's charts.

The request path pays one deque append of (end time, Trace): the Trace is already filled in and
holds no prompt text and no secret. Everything else (per-minute buckets, per-key totals, the
rows the console shows) is folded from the ring later, off the request path: every few seconds
and before each console query. The ring is bounded (`[admin] traffic_records`); a burst of more
requests than that between two folds would miss the charts, not the memory bound.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from dataclasses import dataclass, field

from ..canonical.request import Trace

CHART_MINUTES = 6 * 60
# Time-to-first-token histogram edges (ms), 1 ms x 1.25^i up to ~110 s: percentiles read from
# it are within 25% of the exact value, in constant memory per minute.
TTFT_EDGES = tuple(1.25 ** i for i in range(53))
RECORDED = ("/v1", "/token")    # API routes; not probes, scrapes or the console itself
DIALECTS = (("/v1/messages", "anthropic"), ("/v1/responses", "responses"),
            ("/v1beta/", "gemini"), ("/v1/chat/completions", "openai"))


def dialect_of(route: str) -> str:
    path = route.partition(" ")[2]
    for prefix, name in DIALECTS:
        if path.startswith(prefix):
            return name
    return "-"


def is_error(trace: Trace) -> bool:
    return (trace.status or 0) >= 400 or trace.error_class is not None


@dataclass(slots=True)
class Minute:
    requests: int = 0
    errors: int = 0
    ttft: list = field(default_factory=lambda: [0] * (len(TTFT_EDGES) + 1))

    def add(self, trace: Trace) -> None:
        self.requests += 1
        self.errors += is_error(trace)
        if trace.first_token is not None:
            ms = (trace.first_token - trace.started) * 1000
            self.ttft[bisect.bisect_left(TTFT_EDGES, ms)] += 1

    def percentile(self, q: float) -> float | None:
        total = sum(self.ttft)
        if not total:
            return None
        seen = 0
        for i, n in enumerate(self.ttft):
            seen += n
            if seen >= q * total:
                return round(TTFT_EDGES[min(i, len(TTFT_EDGES) - 1)], 1)
        return None


class TrafficLog:
    def __init__(self, size: int):
        self._ring: deque[tuple[float, Trace]] = deque(maxlen=size)
        # Monotonic end times become wall-clock times with one offset taken at start.
        self._wall = time.time() - time.monotonic()
        self._folded = 0.0                          # end time of the last folded record
        self.minutes: dict[int, Minute] = {}
        self.keys: dict[str, list] = {}             # since start: [requests, prompt, completion, last]

    def observe(self, request, trace: Trace, now: float) -> None:
        """A TRACE_HOOKS hook: the one thing a request pays."""
        if request.path.startswith(RECORDED):
            self._ring.append((now, trace))

    def fold(self, most: int | None = None) -> tuple[dict[str, list], bool]:
        """Fold the oldest unfolded records (at most `most`) into the minute buckets and key
        totals. Returns the per-key deltas, and whether records are left to fold: a caller
        on the event loop folds in slices so that no request waits for a whole ring."""
        fresh = []
        for end, trace in reversed(self._ring):
            if end <= self._folded:
                break
            fresh.append((end, trace))
        if not fresh:
            return {}, False
        fresh.reverse()                         # oldest first
        more = most is not None and len(fresh) > most
        if more:
            fresh = fresh[:most]
        self._folded = fresh[-1][0]
        deltas: dict[str, list] = {}
        for end, trace in fresh:
            wall = end + self._wall
            minute = self.minutes.get(int(wall // 60))
            if minute is None:
                minute = self.minutes[int(wall // 60)] = Minute()
            minute.add(trace)
            if trace.api_key is not None:
                totals = deltas.get(trace.api_key)
                if totals is None:
                    totals = deltas[trace.api_key] = [0, 0, 0, 0.0]
                totals[0] += 1
                totals[1] += trace.prompt_tokens or 0
                totals[2] += trace.completion_tokens or 0
                totals[3] = wall                # oldest first: the last is the latest
        for key_id, (requests, prompt, completion, last) in deltas.items():
            totals = self.keys.setdefault(key_id, [0, 0, 0, 0.0])
            totals[0] += requests
            totals[1] += prompt
            totals[2] += completion
            totals[3] = last
        oldest = int(time.time() // 60) - CHART_MINUTES
        for minute in [m for m in self.minutes if m < oldest]:
            del self.minutes[minute]
        return deltas, more

    def uncounted(self) -> list[Trace]:
        """Requests not folded yet whose answer still needs counting (cut short)."""
        out = []
        for end, trace in reversed(self._ring):
            if end <= self._folded:
                break
            if trace.count_later is not None:
                out.append(trace)
        return out

    def rows(self, match=None, limit: int = 200, dress=lambda row: row) -> list[dict]:
        """The newest requests first, as the console lists them (`dress` names the key)."""
        out = []
        for end, trace in reversed(self._ring):
            row = dress(self._row(end, trace))
            if match is None or match(row):
                out.append(row)
                if len(out) >= limit:
                    break
        return out

    def _row(self, end: float, trace: Trace) -> dict:
        ttft = trace.first_token - trace.started if trace.first_token is not None else None
        return {"time": round(trace.started + self._wall, 3),
                "request_id": trace.request_id, "route": trace.route, "key": trace.api_key,
                "model": trace.model, "dialect": trace.dialect or dialect_of(trace.route),
                "status": trace.status, "error": trace.error_code if is_error(trace) else None,
                "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
                "duration_ms": round((end - trace.started) * 1000, 1),
                "prompt_tokens": trace.prompt_tokens,
                "completion_tokens": trace.completion_tokens, "account": trace.account}

    def series(self, minutes: int) -> list[dict]:
        """One point per minute for the last `minutes` minutes, the current one included."""
        last = int(time.time() // 60)
        out = []
        for m in range(last - minutes + 1, last + 1):
            bucket = self.minutes.get(m)
            if bucket is None:
                out.append({"t": m * 60, "requests": 0, "errors": 0,
                            "p50": None, "p90": None, "p99": None})
                continue
            out.append({"t": m * 60, "requests": bucket.requests, "errors": bucket.errors,
                        "p50": bucket.percentile(0.5), "p90": bucket.percentile(0.9),
                        "p99": bucket.percentile(0.99)})
        return out

