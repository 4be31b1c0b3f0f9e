"""From a call's body to its arguments: JSON repaired (jsonfix), wrappers unwrapped, then the
object fitted leniently to the tool's schema. Fitting never rejects: it only fixes what is
unambiguous ("5" for an integer, `i` for `-i`, "TRUE" for a boolean); missing required keys are
left for the client to report, which costs less than a retry."""

from __future__ import annotations

import re

from kimi.canonical.tools import ToolSpec

from . import jsonfix
from .schema import deref, properties, required, type_ok, types_of, validate

_INT = re.compile(r"^[+-]?\d+$")
_NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_RAW_FENCE = re.compile(r"^```[^\n`]*\n(.*)\n```[ \t]*$", re.S)
_WRAP_KEYS = ("arguments", "parameters", "input", "args")


class ArgError(ValueError):
    pass


def compact(value) -> str:
    return jsonfix.dumps(value)


def function_arguments(body, spec: ToolSpec, *, complete: bool = True) -> dict:
    """`body` is the text of a block (JSON-ish) or a dict already decoded (XML parameters)."""
    if isinstance(body, str):
        text = jsonfix.clean(body)
        if not text:
            if not complete:
                raise ArgError("the call was cut off before its arguments")
            return {}
        try:
            value = jsonfix.loads(text, complete=complete)
        except jsonfix.JSONFixError as e:
            raise ArgError(str(e)) from None
    else:
        value = body
    value = _unwrap(value, spec)
    if not isinstance(value, dict):
        value = _single_string_param(value, spec)
    if jsonfix.too_deep(value):
        raise ArgError(f"the arguments are nested more than {jsonfix.MAX_DEPTH} levels deep")
    schema = spec.parameters if isinstance(spec.parameters, dict) else {}
    value = fit(value, schema, schema)
    if not jsonfix.encodable(value):
        raise ArgError("the arguments hold a value JSON cannot carry (an integer past 64 bits)")
    return value



def _unwrap(value, spec: ToolSpec):
    for _ in range(3):
        if isinstance(value, str) and value.strip()[:1] in ("{", '"'):
            try:
                value = jsonfix.loads(value)          # double-encoded
                continue
            except jsonfix.JSONFixError:
                break
        if isinstance(value, dict) and _is_wrapper(value, spec):
            value = next(value[k] for k in _WRAP_KEYS if k in value)
            continue
        break
    return value


def _is_wrapper(value: dict, spec: ToolSpec) -> bool:
    props = (spec.parameters or {}).get("properties") or {}
    keys = [k for k in _WRAP_KEYS if k in value]
    if not keys or keys[0] in props:
        return False
    named = value.get("name")
    return set(value) <= {"name", keys[0]} and (named is None or isinstance(named, str))


def _single_string_param(value, spec: ToolSpec) -> dict:
    names, props = required(spec.parameters), properties(spec.parameters)
    if isinstance(value, str) and len(names) == 1 \
            and "string" in types_of(deref(props.get(names[0]), None)):
        return {names[0]: value}
    raise ArgError(f"the arguments must be a JSON object, got {type(value).__name__}")


def custom_input(body) -> str:
    """A freeform tool's input, byte for byte: one leading and one trailing newline removed,
    a `{"input": ...}` wrapper or a surrounding ``` fence unwrapped."""
    if not isinstance(body, str):
        return _from_dict(body) if isinstance(body, dict) else compact(body)
    text = body[2:] if body.startswith("\r\n") else body[1:] if body.startswith("\n") else body
    text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            value = jsonfix.loads(stripped)
        except jsonfix.JSONFixError:
            value = None
        if isinstance(value, dict) and len(value) == 1:
            inner = _from_dict(value)
            if inner is not None:
                return inner
    m = _RAW_FENCE.match(text.strip("\n"))
    return m.group(1) if m else text


def _from_dict(value: dict) -> str | None:
    for key in ("input", "patch", "text", "content"):
        if isinstance(value.get(key), str):
            return value[key]
    strings = [v for v in value.values() if isinstance(v, str)]
    return strings[0] if len(strings) == 1 and len(value) == 1 else None


def fit(value, schema, root):
    """`value` adjusted to `schema` where the intent is unambiguous; never raises."""
    schema = deref(schema, root)
    if not schema:
        return value
    for key in ("anyOf", "oneOf"):
        subs = schema.get(key)
        if isinstance(subs, list) and subs:
            if any(not validate(value, s, root=root) for s in subs):
                return value
            for sub in subs:
                fitted = fit(value, sub, root)
                if not validate(fitted, sub, root=root):
                    return fitted
            return value
    subs = schema.get("allOf")
    for sub in subs if isinstance(subs, list) else ():
        value = fit(value, sub, root)
    types = types_of(schema) or (["object"] if "properties" in schema else [])
    if types and not type_ok(value, {"type": types}):
        value = _coerce(value, types)
    if isinstance(value, dict) and (not types or "object" in types):
        value = _fit_object(value, schema, root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [fit(v, schema["items"], root) for v in value]
    return _fit_enum(value, schema)


def _coerce(value, types: list[str]):
    for t in types:
        got = _convert(value, t)
        if got is not _NO:
            return got
    return value


_NO = object()


def _convert(value, t: str):
    if t == "string":
        return compact(value) if not isinstance(value, str) else value
    if t in ("integer", "number") and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return _NO
    s = value.strip()
    if t == "integer" and _INT.match(s):
        return int(s)
    if t == "number" and _NUM.match(s):
        return int(s) if _INT.match(s) else float(s)
    if t == "boolean" and s.lower() in ("true", "false"):
        return s.lower() == "true"
    if t == "null" and s.lower() in ("null", "none"):
        return None
    if t in ("array", "object") and s[:1] in ("[", "{"):
        try:
            got = jsonfix.loads(s)
        except jsonfix.JSONFixError:
            return _NO
        return got if isinstance(got, list if t == "array" else dict) else _NO
    return _NO


def _fit_object(value: dict, schema: dict, root) -> dict:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    extra = schema.get("additionalProperties", True)
    out: dict = {}
    for key, item in value.items():
        target = key if key in props else _match_key(key, props, value)
        if target is None:
            if extra is not False:
                out[key] = fit(item, extra, root) if isinstance(extra, dict) else item
        elif target not in out:
            out[target] = fit(item, props[target], root)
    return out


def _match_key(key: str, props: dict, value: dict) -> str | None:
    free = [p for p in props if p not in value]
    if "-" + key in free:
        return "-" + key                            # Grep's "-i" written as "i"
    lower = key.casefold()
    hits = [p for p in free if p.casefold() == lower]
    return hits[0] if len(hits) == 1 else None


def _fit_enum(value, schema: dict):
    enum = schema.get("enum")
    if isinstance(value, str) and isinstance(enum, list) and value not in enum:
        hits = [e for e in enum if isinstance(e, str) and e.casefold() == value.casefold()]
        if len(hits) == 1:
            return hits[0]
    return value
