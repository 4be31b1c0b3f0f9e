"""Request fields the OpenAI-style dialects (chat completions, Responses, Gemini) decode
alike: a tool's name and description, and a past call's arguments as the client echoes them.
One decoding of the arguments matters beyond tidiness: continuation matches a history on its
canonical calls, so an echoed call must come out as the value the turn stored."""

from __future__ import annotations

import orjson

from ..errors import InvalidRequest

MAX_TOOL_NAME = 128


def tool_name_and_description(d: dict, where: str) -> tuple[str, str]:
    name = d.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOOL_NAME:
        raise InvalidRequest(f"{where}.name must be a non-empty string of at most "
                             f"{MAX_TOOL_NAME} characters", param=f"{where}.name")
    description = d.get("description") or ""
    if not isinstance(description, str):
        raise InvalidRequest(f"{where}.description must be a string",
                             param=f"{where}.description")
    return name, description


def echoed_arguments(raw):
    """A call's arguments as the client echoes them: an object, or a JSON string of one
    (kept as text if it is not a JSON object)."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    return value if isinstance(value, dict) else raw
