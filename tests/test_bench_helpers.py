"""The benchmark's own helpers (bench/): parsing, percentiles, /proc readings, report file.
No timing is asserted here; the benchmark itself is `python bench/run.py`."""

from __future__ import annotations

import os

import orjson
import pytest

from bench.clients import connect_body, frame_text, split_frames, sse_events, sse_text
from bench.procs import placement
from bench.procstat import cpu_seconds, memory_mb, percentile
from bench.report import BEGIN, END, median_merge, write_benchmarks


def frame(obj, flags=0) -> bytes:
    payload = orjson.dumps(obj)
    return bytes([flags]) + len(payload).to_bytes(4, "big") + payload


def test_split_frames_keeps_a_partial_frame_for_the_next_read():
    data = frame({"heartbeat": {}}) + frame({"block": {"text": {"content": "hi"}}}) + frame({}, 2)
    buf = bytearray(data[:-3])
    first = split_frames(buf)
    assert [f for f, _ in first] == [0, 0]
    assert frame_text(orjson.loads(first[1][1])) == "hi"
    buf += data[-3:]
    assert split_frames(buf) == [(2, b"{}")] and not buf


def test_connect_body_is_one_envelope_of_the_chat_request():
    body = connect_body("hello")
    (flags, payload), = split_frames(bytearray(body))
    assert flags == 0
    assert orjson.loads(payload)["message"]["blocks"][0]["text"]["content"] == "hello"


def test_sse_events_split_on_blank_lines_and_skip_comments():
    buf = bytearray(b': keep-alive\n\ndata: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DO')
    events = sse_events(buf)
    assert [sse_text(e) for e in events] == ["a"]
    assert bytes(buf) == b"data: [DO"
    buf += b"NE]\n\n"
    assert sse_events(buf) == [b"[DONE]"]


@pytest.mark.parametrize("values,p,expected", [
    ([3.0, 1.0, 2.0], 50, 2.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
    (list(map(float, range(1, 101))), 99, 99.0),
    ([5.0], 99, 5.0),
    ([1.0, 9.0], 100, 9.0),
])
def test_percentile_is_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected


def test_proc_readings_of_this_process():
    assert cpu_seconds(os.getpid()) > 0
    mem = memory_mb(os.getpid())
    assert 0 < mem["VmRSS"] <= mem["VmHWM"]


@pytest.mark.parametrize("cpus, kind, expected", [
    ({0, 1}, "pinned", ({1}, {0})),
    ({0, 1, 2, 3}, "pinned", ({3}, {0, 1, 2})),
    ({5}, "pinned", None),             # one CPU: nothing to separate
    ({0, 1}, "shared", None),
])
def test_placement_gives_the_gateway_a_cpu_of_its_own(monkeypatch, cpus, kind, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus)
    assert placement(kind) == expected


def test_write_benchmarks_replaces_only_the_marked_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# B\n\nnotes before\n\n{BEGIN}\nold table\n{END}\n\nnotes after\n")
    write_benchmarks("new table\n", str(path))
    text = path.read_text()
    assert "old table" not in text and "new table" in text
    assert text.startswith("# B\n\nnotes before") and text.endswith("notes after\n")


def test_median_merge_takes_the_median_of_numbers_only():
    runs = [{"a": {"p50": 1.0, "paths": ["Chat"]}, "n": 3}, {"a": {"p50": 5.0, "paths": ["x"]}, "n": 1},
            {"a": {"p50": 2.0, "paths": ["y"]}, "n": 2}]
    assert median_merge(runs) == {"a": {"p50": 2.0, "paths": ["Chat"]}, "n": 2}


def test_wrk_script_pieces():
    from bench.loadgen import SCRIPT, lua_string, parse_result
    assert lua_string(b'a"\n\\') == '"\\97\\34\\10\\92"'
    assert 'wrk.body = "\\123"' in SCRIPT.format(body=lua_string(b"{"))
    out = 'Running 1s test\n  1 threads\n\nRESULT {"requests": 7, "bytes": 700, "us": 1000000}\n'
    assert parse_result(out) == {"requests": 7, "bytes": 700, "us": 1000000}


def test_machine_busy_shares_are_fractions():
    from bench.procstat import busy_shares, cpu_busy_ticks
    before = cpu_busy_ticks()
    sum(i * i for i in range(200_000))
    shares = busy_shares(before, cpu_busy_ticks())
    assert set(shares) == set(before) and all(0 <= v <= 1 for v in shares.values())
