"""Structured output by prompt: the instruction, the first JSON value of an answer, the schema
subset validator, the corrective follow-up."""

import pytest

from kimi.canonical.tools import OutputFormat
from kimi.tools.structured import (corrective_json_prompt, first_json_value, json_instruction,
                                   validate)

PERSON = {
    "type": "object", "additionalProperties": False, "required": ["name", "age"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[A-Z]"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "score": {"type": "number", "exclusiveMaximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "kind": {"enum": ["a", "b"]}, "v": {"const": 1},
        "nick": {"type": ["string", "null"]},
        "pet": {"$ref": "#/$defs/pet"},
        "alt": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
        "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "both": {"allOf": [{"type": "string"}, {"minLength": 2}]},
        "old": {"$ref": "#/definitions/flag"},
    },
    "$defs": {"pet": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}},
    "definitions": {"flag": {"type": "boolean"}},
}


def test_a_valid_value_has_no_errors():
    value = {"name": "Ann", "age": 3, "score": 0.5, "tags": ["x"], "kind": "a", "v": 1,
             "nick": None, "pet": {"id": 2}, "alt": True, "one": 2.5, "both": "ab", "old": False}
    assert validate(value, PERSON) == []
    assert validate({"name": "Ann", "age": 3.0}, PERSON) == []       # 3.0 is an integer


@pytest.mark.parametrize("value,error", [
    ({"name": "Ann"}, "$: missing required property 'age'"),
    ({"name": "Ann", "age": "3"}, "$.age: expected integer, got string"),
    ({"name": "Ann", "age": True}, "$.age: expected integer, got boolean"),
    ({"name": "Ann", "age": 1.5}, "$.age: expected integer, got number"),
    ({"name": "Ann", "age": -1}, "$.age: minimum is 0"),
    ({"name": "Ann", "age": 200}, "$.age: maximum is 150"),
    ({"name": "", "age": 1}, "$.name: shorter than 1"),
    ({"name": "Annabel", "age": 1}, "$.name: longer than 5"),
    ({"name": "ann", "age": 1}, "$.name: does not match pattern"),
    ({"name": "Ann", "age": 1, "score": 1}, "$.score: exclusiveMaximum is 1"),
    ({"name": "Ann", "age": 1, "tags": []}, "$.tags: fewer than 1 items"),
    ({"name": "Ann", "age": 1, "tags": ["a", "b", "c"]}, "$.tags: more than 2 items"),
    ({"name": "Ann", "age": 1, "tags": ["a", 2]}, "$.tags[1]: expected string, got integer"),
    ({"name": "Ann", "age": 1, "kind": "c"}, "$.kind: must be one of ['a', 'b']"),
    ({"name": "Ann", "age": 1, "v": True}, "$.v: must be 1"),
    ({"name": "Ann", "age": 1, "nick": 3}, "$.nick: expected string or null"),
    ({"name": "Ann", "age": 1, "pet": {}}, "$.pet: missing required property 'id'"),
    ({"name": "Ann", "age": 1, "pet": {"id": "x"}}, "$.pet.id: expected integer"),
    ({"name": "Ann", "age": 1, "alt": "s"}, "$.alt: matches none of the anyOf"),
    ({"name": "Ann", "age": 1, "one": 2}, "$.one: must match exactly one oneOf schema (matches 2)"),
    ({"name": "Ann", "age": 1, "both": "a"}, "$.both: shorter than 2"),
    ({"name": "Ann", "age": 1, "old": "no"}, "$.old: expected boolean"),
    ({"name": "Ann", "age": 1, "extra": 1}, "$: unexpected property 'extra'"),
    ([1], "$: expected object, got array"),
])
def test_errors_name_the_path(value, error):
    errors = validate(value, PERSON)
    assert any(e.startswith(error) for e in errors), errors


def test_no_schema_accepts_anything():
    assert validate({"any": [1]}, None) == [] and validate(3, {}) == []


@pytest.mark.parametrize("text,value", [
    ('{"a": 1}', {"a": 1}),
    ('Here you go:\n```json\n{"a": [1, 2,],}\n```\nHope it helps.', {"a": [1, 2]}),
    ("Sure! {'a': True} and then {\"b\": 2}", {"a": True}),
    ('[1, 2, {"x": "漢字 🎉"}]', [1, 2, {"x": "漢字 🎉"}]),
    ("I think [this] is it: {\"ok\": true}", {"ok": True}),
    ('"just a string"', "just a string"),
    ("42", 42),
    ('{"a": {"b": [1, 2', {"a": {"b": [1, 2]}}),
])
def test_first_json_value(text, value):
    assert first_json_value(text) == value


@pytest.mark.parametrize("text", ["no json here", "", "[not json] {either", '{"a": "cut'])
def test_no_json_value(text):
    assert first_json_value(text) is None


def test_instruction_carries_the_schema():
    text = json_instruction(OutputFormat("json_schema", {"type": "object"}, "reply", True))
    assert 'JSON Schema "reply"' in text and 'JSON Schema: {"type":"object"}' in text
    plain = json_instruction(OutputFormat())
    assert "JSON value only" in plain and "must be a JSON object" in plain


def test_corrective_json_prompt_lists_the_errors():
    text = corrective_json_prompt(["$.a: expected integer, got string"])
    assert "- $.a: expected integer, got string" in text and "only the corrected JSON" in text
    assert "held no JSON value" in corrective_json_prompt([])


def test_prose_full_of_braces_is_searched_in_bounded_time():
    assert first_json_value("{" * 20000 + " no json") is None
    assert first_json_value("{x} " * 40 + '{"late": 1}') == {"late": 1}
    assert first_json_value("{x} " * 300 + '{"too late": 1}') is None    # past the tried starts


def test_deep_nesting_is_no_value_and_no_crash():
    assert first_json_value("[" * 5000 + "]" * 5000) is None
    assert first_json_value("x " + "[" * 900 + "]" * 900) is None
    assert first_json_value("[" * 60 + "]" * 60) is not None
    deep = [[[]]]
    for _ in range(3000):
        deep = [deep]
    assert validate(deep, {"type": "array", "items": {"$ref": "#"}}) == \
        ["$: nested too deeply to check"]
    assert first_json_value('{"n": 123456789012345678901234567890}') is None
