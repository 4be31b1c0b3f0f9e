"""Field names in Kimi's JSON: camelCase as its web client sees them today, or the proto
field names (snake_case), which protobuf's JSON mapping accepts and emits just as well.
Every multi-word field the gateway reads goes through `field`, so a server that switches
spelling loses nothing (search results, citations, the model catalogue, file status)."""

from __future__ import annotations

import re


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def field(obj: dict, name: str, default=None):
    """obj[name] in either spelling (`name` is given in camelCase)."""
    value = obj.get(name)
    if value is None:
        value = obj.get(snake(name))
    return default if value is None else value
