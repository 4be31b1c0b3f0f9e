"""Structured output (response_format json_object / json_schema) by prompt: ask for JSON only,
take the first complete JSON value from the answer, validate it, and word the one corrective
follow-up when it does not fit."""

from __future__ import annotations

import json
import re

from kimi.canonical.tools import OutputFormat

from . import jsonfix
from .schema import validate

__all__ = ["corrective_json_prompt", "first_json_value", "json_instruction", "validate"]

_STARTS = re.compile(r"[{\[]")
_DECODER = json.JSONDecoder(strict=False)
# Candidate `{` / `[` positions tried, and how many of them may be repaired (a repair reads to
# the end of the text): prose full of braces stays linear.
_MAX_STARTS, _MAX_REPAIRS = 256, 8


def json_instruction(fmt: OutputFormat) -> str:
    """The last lines of the prompt: JSON only, with the schema when there is one."""
    text = ("[Answer with one JSON value only: no prose, no markdown code fence, nothing before "
            "or after it.]")
    if fmt.kind == "json_schema" and isinstance(fmt.schema, dict):
        name = f' "{fmt.name}"' if fmt.name else ""
        text = ("[Answer with one JSON value only, valid against the JSON Schema"
                f"{name} below: no prose, no markdown code fence, nothing before or after it.]\n"
                f"JSON Schema: {jsonfix.dumps(fmt.schema)}")
    else:
        text += "\n[The value must be a JSON object.]"
    return text


def first_json_value(text: str) -> object | None:
    """The first complete JSON object or array in `text` (fences and prose around it are
    ignored; trailing commas, single quotes and Python literals are repaired). A reply that is
    only a JSON scalar gives that scalar. None when there is no JSON value (or one nested
    more than jsonfix.MAX_DEPTH levels deep, or holding an integer past 64 bits)."""
    value = _first_json_value(text)
    return None if jsonfix.too_deep(value) or not jsonfix.encodable(value) else value


def _first_json_value(text: str) -> object | None:
    """The first value found, before the depth check."""
    try:
        return jsonfix.decode(jsonfix.clean(text))
    except ValueError:
        pass
    for tries, m in enumerate(_STARTS.finditer(text)):
        if tries == _MAX_STARTS:
            break
        try:
            return jsonfix.scrub(_DECODER.raw_decode(text, m.start())[0])
        except (ValueError, RecursionError):
            pass
        if tries >= _MAX_REPAIRS:
            continue
        try:
            value = jsonfix.loads(text[m.start():], complete=False)
        except jsonfix.JSONFixError:
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


def corrective_json_prompt(errors: list[str]) -> str:
    """The one follow-up when the answer was not valid JSON for the requested format."""
    listed = "\n".join(f"- {e}" for e in errors[:20]) or "- the reply held no JSON value"
    return ("Your previous reply was not valid for the requested JSON format:\n"
            f"{listed}\nReply now with only the corrected JSON value, nothing else.")
