"""Reading Gemini's wire JSON: field names and schemas.

Google's JSON is camelCase, but the Python SDK leaves some nested objects in snake_case
(`inlineData: {"mime_type": ...}`, `thinkingConfig: {"include_thoughts": ...}`,
`parameters_json_schema`): every field is looked up under both names.
Schemas come as Google's OpenAPI subset (`parameters`, `responseSchema`: upper-case types,
`nullable`, `propertyOrdering`) or as JSON Schema (`parametersJsonSchema`,
`responseJsonSchema`); the tool emulation and structured output want JSON Schema.
"""

from __future__ import annotations

import re

from ...errors import InvalidRequest

_UPPER = re.compile(r"(?<=[a-z0-9])([A-Z])")
_UNDERSCORE = re.compile(r"_([a-z])")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA = ("items", "additionalProperties", "not")


def snake(name: str) -> str:
    return _UPPER.sub(lambda m: "_" + m.group(1).lower(), name)


def camel(name: str) -> str:
    return _UNDERSCORE.sub(lambda m: m.group(1).upper(), name)


def get(obj: dict, name: str, default=None):
    """`obj[name]` under its camelCase name or its snake_case one."""
    value = obj.get(name)
    if value is None:
        value = obj.get(snake(name))
    return default if value is None else value


def obj(value, where: str, required: bool = False) -> dict:
    """An optional JSON object field ({} when absent)."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    return value


def array(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{where} must be an array", param=where)
    return value


def json_schema(schema):
    """Google's OpenAPI schema subset -> JSON Schema (a JSON Schema passes through almost
    untouched: lower-case types are kept, unknown keywords too)."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        key = camel(key)
        if key in ("propertyOrdering", "nullable"):
            continue
        if key == "type" and isinstance(value, str):
            if value.upper() == "TYPE_UNSPECIFIED":
                continue
            value = value.lower()
        elif key == "properties" and isinstance(value, dict):
            value = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            value = json_schema(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            value = [json_schema(sub) for sub in value]
        out[key] = value
    if get(schema, "nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
