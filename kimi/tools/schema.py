"""A JSON Schema subset, enough for tool parameters and structured output: type (also lists of
types; integer vs number; null), properties, required, additionalProperties, items, enum, const,
anyOf / oneOf / allOf, min/max Length / Items / imum, pattern, and $ref to #/$defs or
#/definitions. No dependency; unknown keywords are ignored."""

from __future__ import annotations

import re

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def deref(schema, root: dict | None):
    """`schema` with a local `$ref` followed (at most a few levels, so a cycle cannot hang)."""
    for _ in range(8):
        if not isinstance(schema, dict) or "$ref" not in schema or not root:
            break
        ref = schema["$ref"]
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            break
        node = root
        for part in ref[2:].split("/") if ref != "#" else ():
            node = node.get(part.replace("~1", "/").replace("~0", "~")) \
                if isinstance(node, dict) else None
        schema = node if isinstance(node, dict) else {}
    return schema if isinstance(schema, dict) else {}


def properties(schema) -> dict:
    """An object schema's properties; {} when it has none a reader can use."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def required(schema) -> list[str]:
    """An object schema's required names (draft 3 wrote `"required": true` on properties)."""
    names = schema.get("required") if isinstance(schema, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def types_of(schema: dict) -> list[str]:
    t = schema.get("type")
    return [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] \
        if isinstance(t, list) else []


def type_ok(value, schema: dict) -> bool:
    ts = types_of(schema)
    return not ts or any(_TYPES.get(t, lambda v: True)(value) for t in ts)


def validate(value, schema: dict | None, *, root: dict | None = None) -> list[str]:
    """Every way `value` breaks `schema`, each message naming the path ($.a.b[0]). `root`
    is the document `$ref`s point into (default: `schema` itself)."""
    try:
        return _validate(value, schema, root=root, path="$")
    except RecursionError:
        return ["$: nested too deeply to check"]


def _validate(value, schema, *, root: dict | None, path: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    root = root if root is not None else schema
    schema = deref(schema, root)
    if not type_ok(value, schema):
        return [f"{path}: expected {' or '.join(types_of(schema))}, got {_kind(value)}"]
    errors = _keywords(value, schema, path)
    for key, check in (("allOf", all), ("anyOf", any)):
        subs = schema.get(key)
        if isinstance(subs, list) and subs:
            results = [_validate(value, s, root=root, path=path) for s in subs]
            if key == "allOf":
                errors += [e for r in results for e in r]
            elif not any(not r for r in results):
                errors.append(f"{path}: matches none of the anyOf schemas ({results[0][0]})")
    subs = schema.get("oneOf")
    if isinstance(subs, list) and subs:
        ok = sum(1 for s in subs if not _validate(value, s, root=root, path=path))
        if ok != 1:
            errors.append(f"{path}: must match exactly one oneOf schema (matches {ok})")
    if isinstance(value, dict):
        errors += _object(value, schema, root, path)
    elif isinstance(value, list):
        errors += _array(value, schema, root, path)
    return errors


def _kind(value) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value) and not (name == "integer" and isinstance(value, float)):
            return name
    return type(value).__name__


def _keywords(value, schema: dict, path: str) -> list[str]:
    errors = []
    if "enum" in schema and isinstance(schema["enum"], list) and not _member(value, schema["enum"]):
        errors.append(f"{path}: must be one of {schema['enum']!r}")
    if "const" in schema and not _member(value, [schema["const"]]):
        errors.append(f"{path}: must be {schema['const']!r}")
    if isinstance(value, str):
        n = len(value)
        if isinstance(schema.get("minLength"), int) and n < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if isinstance(schema.get("maxLength"), int) and n > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _search(pattern, value):
            errors.append(f"{path}: does not match pattern {pattern!r}")
    elif _TYPES["number"](value):
        for key, bad in (("minimum", lambda v, m: v < m), ("maximum", lambda v, m: v > m),
                         ("exclusiveMinimum", lambda v, m: v <= m),
                         ("exclusiveMaximum", lambda v, m: v >= m)):
            limit = schema.get(key)
            if _TYPES["number"](limit) and bad(value, limit):
                errors.append(f"{path}: {key} is {limit}, got {value}")
    return errors


def _member(value, options: list) -> bool:
    return any(value == o and isinstance(value, bool) == isinstance(o, bool) for o in options)


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True             # a pattern Python cannot read is not the value's fault


def _object(value: dict, schema: dict, root: dict, path: str) -> list[str]:
    errors = []
    props = properties(schema)
    for key in required(schema):
        if key not in value:
            errors.append(f"{path}: missing required property {key!r}")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = f"{path}.{key}"
        if key in props:
            errors += _validate(item, props[key], root=root, path=sub)
        elif extra is False:
            errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, dict):
            errors += _validate(item, extra, root=root, path=sub)
    return errors


def _array(value: list, schema: dict, root: dict, path: str) -> list[str]:
    errors = []
    if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            errors += _validate(item, items, root=root, path=f"{path}[{i}]")
    return errors
