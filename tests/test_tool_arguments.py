"""The argument pipeline: JSON repair, unwrapping, lenient schema fitting, freeform input,
and name resolution."""

import pytest

from kimi.canonical.tools import ToolCall, ToolSpec
from kimi.tools import render_call
from kimi.tools.args import ArgError, custom_input, fit, function_arguments
from kimi.tools.jsonfix import JSONFixError, loads
from kimi.tools.names import resolve
from tests.tool_fixtures import BASH, EDIT, GREP, ISSUE, READ, call, run


@pytest.mark.parametrize("text,value", [
    ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
    ('{"a": "line1\nline2\tend"}', {"a": "line1\nline2\tend"}),
    ("{'a': 'it\\'s', 'b': \"q\"}", {"a": "it's", "b": "q"}),
    ("{'a': 'say \"hi\"'}", {"a": 'say "hi"'}),
    ('{"a": True, "b": None, "c": False}', {"a": True, "b": None, "c": False}),
    ('{"a": {"b": [1, {"c": 2', {"a": {"b": [1, {"c": 2}]}}),
    ('{"a": 1} trailing words', {"a": 1}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('\ufeff{"a": "\u200b"}', {"a": ""}),
    ('{"a": "漢字 🎉"}', {"a": "漢字 🎉"}),
    ('{"a": "x\\u00e9"}', {"a": "xé"}),
    ('{"a":', {"a": None}),
])
def test_json_repairs(text, value):
    assert loads(text) == value


@pytest.mark.parametrize("text", ['{"a": "cut', '{"a": 1, ', '{"a"', "{", '{"a": [1, '])
def test_cut_off_json_is_an_error_not_a_guess(text):
    with pytest.raises(JSONFixError, match="cut off"):
        loads(text, complete=False)


def test_only_brackets_are_added_to_a_cut_off_text():
    assert loads('{"a": [1, 2', complete=False) == {"a": [1, 2]}
    assert loads('{"a": "b"', complete=False) == {"a": "b"}


@pytest.mark.parametrize("spec,body,args", [
    (READ, '{"file_path": "a", "limit": "5", "offset": "2.5"}',
     {"file_path": "a", "limit": 5, "offset": 2.5}),
    (READ, '{"file_path": "a", "limit": 5.0}', {"file_path": "a", "limit": 5}),
    (READ, '"{\\"file_path\\": \\"double\\"}"', {"file_path": "double"}),
    (READ, '{"name": "Read", "arguments": {"file_path": "w"}}', {"file_path": "w"}),
    (READ, '{"name": "Read", "arguments": "{\\"file_path\\": \\"s\\"}"}', {"file_path": "s"}),
    (READ, '{"FILE_PATH": "case"}', {"file_path": "case"}),
    (READ, '"/just/a/path"', {"file_path": "/just/a/path"}),
    (READ, "", {}),
    (BASH, '{"command": ["ls", "-la"], "run_in_background": "TRUE", "timeout": " 30 "}',
     {"command": '["ls","-la"]', "run_in_background": True, "timeout": 30}),
    (BASH, '{"command": {"x": 1}}', {"command": '{"x":1}'}),
    (BASH, '{"command": 42}', {"command": "42"}),
    (BASH, '{"timeout": "soon"}', {"timeout": "soon"}),               # kept: the client reports
    (GREP, '{"pattern": "x", "i": true, "n": "true", "output_mode": "Content", "extra": 1}',
     {"pattern": "x", "-i": True, "-n": True, "output_mode": "content"}),
    (ISSUE, '{"title": "t", "labels": "[\\"bug\\", \\"ui\\"]"}', {"title": "t", "labels": ["bug", "ui"]}),
    (ISSUE, '{"title": 7, "unknown": "kept"}', {"title": "7", "unknown": "kept"}),
    (EDIT, '{"file_path": "a"}', {"file_path": "a"}),                 # missing keys kept missing
])
def test_function_arguments(spec, body, args):
    assert function_arguments(body, spec) == args


@pytest.mark.parametrize("body,error", [
    ("[1, 2]", "must be a JSON object"),
    ('{"file_path": ', "cut off"),
    ("{file_path: ??}", "invalid JSON"),
])
def test_function_arguments_errors(body, error):
    with pytest.raises(ArgError, match=error):
        function_arguments(body, READ, complete=False)


def test_fitting_follows_refs_and_unions():
    schema = {"type": "object", "$defs": {"n": {"type": "integer"}},
              "properties": {"a": {"$ref": "#/$defs/n"},
                             "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                             "c": {"type": ["integer", "string"]},
                             "d": {"type": "array", "items": {"type": "boolean"}}}}
    got = fit({"a": "3", "b": "4", "c": "x", "d": ["true", "False"]}, schema, schema)
    assert got == {"a": 3, "b": 4, "c": "x", "d": [True, False]}


def test_fitting_never_raises_on_odd_schemas():
    weird = {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}, "b": True,
                                              "c": {"type": 5}}, "required": "a"}
    assert fit({"a": 1, "b": 2, "c": 3}, weird, weird) == {"a": 1, "b": 2, "c": 3}
    spec = ToolSpec("X", parameters=None)
    assert function_arguments('{"k": [1]}', spec) == {"k": [1]}


@pytest.mark.parametrize("body,text", [
    ("\n*** Begin Patch\n  keep  \n\n*** End Patch\n", "*** Begin Patch\n  keep  \n\n*** End Patch"),
    ("\n\nblank first\n\n", "\nblank first\n"),
    ("\r\nwindows\r\n", "windows"),
    ('{"input": "a\\nb"}', "a\nb"),
    ('\n{"patch": "p"}\n', "p"),
    ("\n```diff\n-a\n+b\n```\n", "-a\n+b"),
    ("{not json}", "{not json}"),
    ({"input": "from xml"}, "from xml"),
])
def test_custom_input_is_byte_exact(body, text):
    assert custom_input(body) == text


@pytest.mark.parametrize("name,declared,want", [
    ("Read", ("Read", "read"), "Read"),
    ("read", ("Read", "Bash"), "Read"),
    ("functions.Read:0", ("Read",), "Read"),
    ("default_api:Read", ("Read",), "Read"),
    ("default_api.read", ("Read",), "Read"),
    ("tools.functions.Read", ("Read",), "Read"),
    ("read-file", ("read_file",), "read_file"),
    ("Read File", ("read_file",), "read_file"),
    ("mcp__github__create_issue", ("mcp__github__create_issue",), "mcp__github__create_issue"),
    ("github__create_issue", ("mcp__github__create_issue",), None),
    ("READ", ("read", "Read"), None),                     # ambiguous: no guess
    ("Write", ("Read",), None),
    ("", ("Read",), None),
])
def test_name_resolution(name, declared, want):
    assert resolve(name, declared) == want


def test_lone_surrogate_escapes_become_replacement_characters():
    got = function_arguments('{"command": "\\ud83c x \\ud83c\\udf89"}', BASH)
    assert got == {"command": "\ufffd x \U0001f389"}
    got, _ = run('<function_calls><invoke name="Bash"><parameter name="command">"\\udc00"'
                 "</parameter></invoke></function_calls>")
    assert got == [call("Bash", {"command": "\ufffd"})]


@pytest.mark.parametrize("depth,error", [(900, "nested more than 64"), (5000, "nested too deeply")])
def test_deeply_nested_arguments_are_a_bad_block(depth, error):
    text = '<tool_call name="Bash">{"command": ' + "[" * depth + "]" * depth + "}</tool_call>"
    [bad], sieve = run(text)
    assert bad.raw == text and error in bad.error and sieve.calls == 0


def test_values_the_encoders_cannot_write_are_refused_or_rendered_safely():
    [bad], _ = run('<tool_call name="Bash">{"command": "x", "timeout": 123456789012345678901234}'
                   "</tool_call>")
    assert "integer past 64 bits" in bad.error
    deep = {"a": 1}
    for _ in range(300):
        deep = {"k": deep}
    assert render_call(ToolCall("c", "Bash", deep)).count("{") == 301
    assert render_call(ToolCall("c", "Bash", {"n": 10 ** 30})) == \
        '<tool_call name="Bash">\n{"n":1000000000000000000000000000000}\n</tool_call>'
