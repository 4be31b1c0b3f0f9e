"""The traffic record alone: bounded, folded once per record, percentiles from its histogram."""

import time
from types import SimpleNamespace

from kimi.admin.traffic import CHART_MINUTES, Minute, TrafficLog, dialect_of
from kimi.canonical.request import Trace

API = SimpleNamespace(path="/v1/chat/completions")


def trace(ttft_ms: float | None = 100.0, status: int = 200, key: str | None = "ak_1") -> Trace:
    now = time.monotonic()
    return Trace(request_id="r", route="POST /v1/chat/completions", model="kimi", status=status,
                 started=now, first_token=None if ttft_ms is None else now + ttft_ms / 1000,
                 api_key=key, prompt_tokens=3, completion_tokens=5)


def test_the_ring_is_bounded_and_only_api_routes_enter_it():
    log = TrafficLog(50)
    for i in range(120):
        log.observe(API, trace(), time.monotonic())
    for path in ("/metrics", "/healthz", "/admin/api/traffic", "/"):
        log.observe(SimpleNamespace(path=path), trace(), time.monotonic())
    assert len(log.rows(limit=500)) == 50


def test_each_record_is_folded_once():
    log = TrafficLog(100)
    for _ in range(3):
        log.observe(API, trace(), time.monotonic())
    assert log.fold(2) == ({"ak_1": [2, 6, 10, log.keys["ak_1"][3]]}, True)
    assert log.fold(2) == ({"ak_1": [1, 3, 5, log.keys["ak_1"][3]]}, False)
    assert log.fold() == ({}, False)
    log.observe(API, trace(status=502, key=None), time.monotonic())
    log.fold()
    [point] = log.series(1)
    assert (point["requests"], point["errors"]) == (4, 1)
    assert log.keys["ak_1"][:3] == [3, 9, 15]


def test_percentiles_come_within_a_bin_of_the_truth():
    log = TrafficLog(1000)
    for ms in range(1, 1001):
        log.observe(API, trace(float(ms)), time.monotonic())
    log.observe(API, trace(None), time.monotonic())      # no first token: not in the TTFT
    log.fold()
    [point] = log.series(1)
    for q, exact in (("p50", 500), ("p90", 900), ("p99", 990)):
        assert exact <= point[q] <= exact * 1.25, (q, point[q])


def test_minutes_older_than_the_chart_are_dropped():
    log = TrafficLog(10)
    log.minutes[int(time.time() // 60) - CHART_MINUTES - 5] = Minute()
    log.observe(API, trace(), time.monotonic())
    log.fold()
    assert len(log.minutes) == 1


def test_dialects_from_routes():
    assert dialect_of("POST /v1/chat/completions/abc") == "openai"
    assert dialect_of("POST /v1/messages") == "anthropic"
    assert dialect_of("GET /v1/models") == "-"
