"""Readers of a raw Responses stream for the tests: the grammar every stream must follow,
and a port of Codex's reader (codex-rs/codex-api/src/sse/responses.rs, process_sse)."""

from __future__ import annotations

import orjson

TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
DELTAS = {"function_call": ("response.function_call_arguments", "arguments"),
          "custom_tool_call": ("response.custom_tool_call_input", "input")}


def parse(raw: str) -> list[dict]:
    """Every event of an SSE body; its `event:` line must name its type."""
    events = []
    for record in raw.split("\n\n"):
        lines = [x for x in record.split("\n") if x and not x.startswith(":")]
        if not lines:
            continue
        name = next(x[7:] for x in lines if x.startswith("event: "))
        data = orjson.loads("".join(x[6:] for x in lines if x.startswith("data: ")))
        assert data["type"] == name, record
        events.append(data)
    return events


def check_grammar(events: list[dict]) -> dict:
    """Asserts the Responses stream grammar; returns the terminal response."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[1]["type"] == "response.in_progress"
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1, ids
    assert events[-1]["type"] in TERMINAL
    assert sum(e["type"] in TERMINAL for e in events) == 1
    added, done, open_item, deltas = {}, [], None, {}
    for e in events[2:-1]:
        kind = e["type"]
        if kind == "response.output_item.added":
            assert open_item is None, "one item open at a time"
            assert e["output_index"] == len(done)
            open_item = added[e["output_index"]] = e["item"]
            deltas[e["item"]["id"]] = []
        elif kind == "response.output_item.done":
            assert open_item is not None and e["item"]["id"] == open_item["id"]
            assert e["output_index"] == len(done)
            if open_item["type"] in DELTAS:     # arguments.done = the deltas = the item's
                field = DELTAS[open_item["type"]][1]
                assert e["item"][field] == open_item[field] and open_item[field] is not None
            done.append(e["item"])
            open_item = None
        elif kind == "response.in_progress":
            assert e["response"]["output"] == []
        else:
            assert open_item is not None and e["item_id"] == open_item["id"], e
            assert e["output_index"] == len(done)
            _check_part(e, open_item, deltas[open_item["id"]], done)
    assert open_item is None, "every added item has a done"
    final = events[-1]["response"]
    assert final["output"] == done
    if events[-1]["type"] != "response.failed":
        assert final["usage"]["total_tokens"] == \
            final["usage"]["input_tokens"] + final["usage"]["output_tokens"]
    return final


def _check_part(e: dict, item: dict, deltas: list, done: list) -> None:
    kind = e["type"]
    if kind.endswith(".delta"):
        deltas.append(e["delta"])
    elif kind.endswith("_text.done") or kind in ("response.function_call_arguments.done",
                                                   "response.custom_tool_call_input.done"):
        value = e.get("text", e.get("arguments", e.get("input")))
        assert value == "".join(deltas)
        if item["type"] in DELTAS:
            assert kind == DELTAS[item["type"]][0] + ".done"
            item[DELTAS[item["type"]][1]] = value   # compared with the done item
            deltas.clear()


class CodexStreamError(Exception):
    pass


def codex_process_sse(raw: str) -> tuple[list[dict], dict]:
    """Codex's reading of a stream: output items only from `response.output_item.done`
    (an item that does not deserialise is skipped), the id and usage from
    `response.completed`; a stream without it is an error (Codex reconnects)."""
    items, completed = [], None
    for record in raw.split("\n\n"):
        data = "".join(x[6:] for x in record.split("\n") if x.startswith("data: "))
        if not data:
            continue
        event = orjson.loads(data)
        kind = event.get("type")
        if kind == "response.output_item.done":
            item = _response_item(event.get("item"))
            if item is not None:
                items.append(item)
        elif kind == "response.failed":
            raise CodexStreamError(event["response"]["error"]["code"])
        elif kind == "response.completed":
            resp = event["response"]
            completed = {"id": resp["id"], "usage": resp.get("usage")}
    if completed is None:
        raise CodexStreamError("stream closed before response.completed")
    return items, completed


def _response_item(item) -> dict | None:
    """The fields Codex's ResponseItem needs, per type; None when it would not parse."""
    need = {"message": ("role", "content"), "function_call": ("name", "arguments", "call_id"),
            "custom_tool_call": ("name", "input", "call_id"), "reasoning": ("id", "summary")}
    if not isinstance(item, dict) or item.get("type") not in need:
        return None
    if not all(isinstance(item.get(k), (str, list)) for k in need[item["type"]]):
        return None
    return item
