"""Canonical messages -> Responses input items (for `GET /v1/responses/{id}/input_items`),
Pure."""

from __future__ import annotations

from ...canonical.request import Message
from ...canonical.tools import ToolKind
from .encode import arguments_text


def input_items(rid: str, messages: list[Message]) -> list[dict]:
    """The items of a stored response's history, oldest first, with ids derived from the
    response's (the store keeps canonical messages, not the client's items)."""
    items = []
    for m in messages:
        if m.role == "tool":
            items.append({"type": "function_call_output", "call_id": m.tool_call_id,
                          "output": m.text})
            continue
        if m.text or not m.tool_calls:
            part = "output_text" if m.role == "assistant" else "input_text"
            items.append({"type": "message", "role": m.role, "status": "completed",
                          "content": [{"type": part, "text": m.text}]})
        for c in m.tool_calls:
            custom = c.kind == ToolKind.CUSTOM
            items.append({"type": "custom_tool_call", "call_id": c.id, "name": c.name,
                          "input": c.arguments} if custom else
                         {"type": "function_call", "call_id": c.id, "name": c.name,
                          "arguments": arguments_text(c), "status": "completed"})
    hexid = rid.removeprefix("resp_")
    return [{"id": f"item_{hexid}_{i}", **item} for i, item in enumerate(items)]


def items_page(items: list[dict], query) -> dict:
    """A list page as the API gives it: `order` desc (newest first, the default) or asc,
    `after` an item id, `limit` 1-100 (20)."""
    data = list(reversed(items)) if query.get("order", "desc") != "asc" else list(items)
    after = query.get("after")
    if after:
        ids = [i["id"] for i in data]
        data = data[ids.index(after) + 1:] if after in ids else []
    try:
        limit = min(max(int(query.get("limit", 20)), 1), 100)
    except ValueError:
        limit = 20
    page = data[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(data) > limit}

