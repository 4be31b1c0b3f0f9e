"""Anthropic's stream grammar, checked on raw SSE bytes (reference: dialects-and-tools.md §1.4,
§6.10 A1). `check_stream` asserts every rule and returns the parsed records."""

from __future__ import annotations

import json

STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                "model_context_window_exceeded"}
DELTAS = {"text": {"text_delta", "citations_delta"}, "thinking": {"thinking_delta", "signature_delta"},
          "tool_use": {"input_json_delta"}, "server_tool_use": {"input_json_delta"},
          "web_search_tool_result": set()}


def parse(raw: str) -> list[tuple[str, dict]]:
    """(event name, data) per record; a record without an `event:` line is a failure, SSE
    comments are not allowed either (Anthropic pings are events)."""
    records = []
    assert raw.endswith("\n\n"), raw[-200:]
    for chunk in raw.split("\n\n")[:-1]:
        lines = chunk.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), chunk
        records.append((lines[0][7:], json.loads(lines[1][6:])))
    return records


def check_stream(raw: str, *, error: bool = False) -> list[tuple[str, dict]]:
    records = parse(raw)
    for name, data in records:
        assert name == data["type"], (name, data)
    names = [n for n, _ in records]
    assert names[0] == "message_start", names
    if error:
        assert names[-1] == "error" and names.count("error") == 1, names
        body = [r for r in records[1:-1] if r[0] != "ping"]
    else:
        assert names[-2:] == ["message_delta", "message_stop"], names
        assert "error" not in names
        body = [r for r in records[1:-2] if r[0] != "ping"]
    tool_use = _check_blocks(body, closed=not error)
    if not error:
        delta = records[-2][1]
        assert delta["delta"]["stop_reason"] in STOP_REASONS
        assert (delta["delta"]["stop_reason"] == "tool_use") == tool_use, delta
        assert isinstance(delta["usage"]["output_tokens"], int)
        assert isinstance(records[0][1]["message"]["usage"]["input_tokens"], int)
    return records


def _check_blocks(body: list, *, closed: bool) -> bool:
    """Indexes 0, 1, 2... one block open at a time, every start stopped; thinking ends with
    one signature_delta; tool_use starts with input {} and its partial_json joins to an
    object. True when a tool_use block was sent."""
    expected, open_block, saw_tool, server_use = 0, None, False, None
    for name, data in body:
        if name == "content_block_start":
            assert open_block is None, ("two open blocks", data)
            assert data["index"] == expected, data
            block = data["content_block"]
            open_block = {"type": block["type"], "deltas": [], "index": data["index"]}
            if block["type"] == "tool_use":
                assert block["input"] == {} and block["id"].startswith("toolu_"), block
                saw_tool = True
            if block["type"] == "server_tool_use":
                assert block["input"] == {} and block["id"].startswith("srvtoolu_"), block
                server_use = block["id"]
            if block["type"] == "web_search_tool_result":
                assert block["tool_use_id"] == server_use, block
                assert all(r["type"] == "web_search_result" and r["url"] for r in
                           block["content"]), block
        elif name == "content_block_delta":
            assert open_block is not None and data["index"] == open_block["index"], data
            assert data["delta"]["type"] in DELTAS[open_block["type"]], data
            open_block["deltas"].append(data["delta"])
        elif name == "content_block_stop":
            assert open_block is not None and data["index"] == open_block["index"], data
            _check_closed(open_block)
            open_block, expected = None, expected + 1
        else:
            raise AssertionError(f"unexpected record {name} between message_start and the end")
    if closed:
        assert open_block is None, open_block
    return saw_tool


def _check_closed(block: dict) -> None:
    deltas = block["deltas"]
    if block["type"] == "thinking":
        kinds = [d["type"] for d in deltas]
        assert kinds.count("signature_delta") == 1 and kinds[-1] == "signature_delta", kinds
        assert deltas[-1]["signature"]
    if block["type"] in ("tool_use", "server_tool_use"):
        joined = "".join(d["partial_json"] for d in deltas)
        assert isinstance(json.loads(joined), dict), joined


def blocks(records) -> list[dict]:
    """The content blocks the stream built: type plus the joined text / thinking / input."""
    out: list[dict] = []
    for name, data in records:
        if name == "content_block_start":
            out.append(dict(data["content_block"]))
            out[-1]["_json"] = ""
        elif name == "content_block_delta":
            d, b = data["delta"], out[data["index"]]
            if d["type"] == "text_delta":
                b["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                b["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                b["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                b["_json"] += d["partial_json"]
    for b in out:
        if b["type"] == "tool_use":
            b["input"] = json.loads(b["_json"])
        del b["_json"]
    return out
