"""Kimi's JSON spelled with proto field names (snake_case) instead of camelCase: protobuf's
JSON mapping allows either, so a server may switch. `state.field_names = "snake"` makes the
emulator send every stream frame and unary answer that way (keys only; values as they are)."""

from __future__ import annotations

import re

_UPPER = re.compile(r"(?<=[a-z0-9])([A-Z])")


def spelled(obj, style: str):
    if style != "snake":
        return obj
    if isinstance(obj, dict):
        return {_UPPER.sub(r"_\1", k).lower(): spelled(v, style) for k, v in obj.items()}
    if isinstance(obj, list):
        return [spelled(v, style) for v in obj]
    return obj
