"""ToolSieve: every accepted call format, fences and inline code, `<` in ordinary text, text
after the calls, cut-off blocks; each scenario fed whole, at every single split point, one
character at a time and in random pieces must give the same result."""

import pytest

from kimi.canonical.tools import ChoiceMode
from kimi.tools import BadBlock, ParsedCall, ToolSieve
from kimi.tools.markers import MAX_OPENER
from tests.tool_fixtures import TOOLS, Bad, call, chunkings, run, tools

PATCH_TEXT = ("*** Begin Patch\n*** Update File: src/app.py\n@@ def main():\n-    print('hi')\n"
              "+    print(\"héllo 世界 🎉\")\t# tab\n+    return {\"a\": [1, 2,]}\n \n*** End Patch")

SCENARIOS = [
    # ordinary text full of '<' and '[' passes byte-identical
    ("html", "<b>bold</b> <div class=\"x\">a</div> <br/> <tool_callx> <tool_calls_x> [call] "
             "<|im_start|> <<< List<int> a < b, b > c </tool_call> <tool_call/> [function]",
     None),
    ("opener_as_prose", "Use <tool_call is how it starts> or <tool_call name=\"Read\"> "
                        "followed by JSON.", None),
    ("cjk_emoji_text", "你好，世界！🎉 <ruby>漢<rt>かん</rt></ruby> 😀 ok", None),
    # F1
    ("f1", 'Let me read it.\n<tool_call name="Read">\n{"file_path": "/repo/README.md"}\n'
           '</tool_call>',
     ["Let me read it.\n", call("Read", {"file_path": "/repo/README.md"})]),
    ("f1_parallel", '<tool_call name="Read">{"file_path": "a.py"}</tool_call>\n\n'
                    '<tool_call name="Bash">{"command": "ls -la"}</tool_call>\n',
     [call("Read", {"file_path": "a.py"}), call("Bash", {"command": "ls -la"})]),
    ("f1_unicode", '<tool_call name="Bash">{"command": "echo 你好 🎉 \\u00e9"}</tool_call>',
     [call("Bash", {"command": "echo 你好 🎉 é"})]),
    ("f1_single_quoted_attr", "<tool_call name='Read' id=x>{\"file_path\": \"b\"}</tool_call>",
     [call("Read", {"file_path": "b"})]),
    ("f1_tool_attr", '<tool_call tool="Bash">{"command": "t"}</tool_call>'
                     '<tool_call function="apply_patch">\nraw\n</tool_call>',
     [call("Bash", {"command": "t"}), call("apply_patch", "raw")]),
    ("f1_xml_params", '<tool_call name="Bash"><parameter name="command">ls</parameter>'
                      '<parameter name="timeout">30</parameter></tool_call>',
     [call("Bash", {"command": "ls", "timeout": 30})]),
    ("closer_inside_string", '<tool_call name="Bash">{"command": "echo \'</tool_call>\' \\"q\\""}'
                             '</tool_call>',
     [call("Bash", {"command": "echo '</tool_call>' \"q\""})]),
    # F2
    ("f2", '<tool_call>{"name": "Read", "arguments": {"file_path": "/x", "limit": "5"}}</tool_call>',
     [call("Read", {"file_path": "/x", "limit": 5})]),
    ("f2_wrapper", '<tool_calls>\n<tool_call>{"name": "Read", "parameters": {"file_path": "1"}}'
                   '</tool_call>\n<tool_call>{"name": "Bash", "input": {"command": "pwd"}}'
                   '</tool_call>\n</tool_calls>',
     [call("Read", {"file_path": "1"}), call("Bash", {"command": "pwd"})]),
    ("f2_args_string", '<tool_call>{"name": "Bash", "args": "{\\"command\\": \\"id\\"}"}'
                       '</tool_call>',
     [call("Bash", {"command": "id"})]),
    ("f2_next_opener_ends", '<tool_call>{"name": "Read", "arguments": {"file_path": "a"}}\n'
                            '<tool_call>{"name": "Read", "arguments": {"file_path": "b"}}'
                            '</tool_call>',
     [call("Read", {"file_path": "a"}), call("Read", {"file_path": "b"})]),
    ("f2_openai_function", '<tool_call>{"type": "function", "function": {"name": "Bash", '
                           '"arguments": "{\\"command\\":\\"w\\"}"}}</tool_call>',
     [call("Bash", {"command": "w"})]),
    # F3
    ("f3", 'Reading.\n<function_calls>\n<invoke name="Read">\n<parameter name="file_path">'
           '/a b.txt</parameter>\n<parameter name="limit">10</parameter>\n</invoke>\n'
           '<invoke name="Grep"><parameter name="pattern">x</parameter><parameter name="-i">'
           'true</parameter></invoke>\n</function_calls>',
     ["Reading.\n", call("Read", {"file_path": "/a b.txt", "limit": 10}),
      call("Grep", {"pattern": "x", "-i": True})]),
    ("f3_dsml", '<|DSML|tool_calls><|DSML|invoke name="mcp__github__create_issue">'
                '<|DSML|parameter name="title" string="true">123</|DSML|parameter>'
                '<|DSML|parameter name="labels" string="false">["bug", "p1"]</|DSML|parameter>'
                '</|DSML|invoke></|DSML|tool_calls>',
     [call("mcp__github__create_issue", {"title": "123", "labels": ["bug", "p1"]})]),
    ("f3_dsml_wide_items", '<｜DSML｜tool_calls><｜DSML｜invoke name="mcp__github__create_issue">'
                           '<｜DSML｜parameter name="title"><![CDATA[a <b> & c]]></｜DSML｜parameter>'
                           '<｜DSML｜parameter name="labels"><item>x</item><item>y</item>'
                           '</｜DSML｜parameter></｜DSML｜invoke></｜DSML｜tool_calls>',
     [call("mcp__github__create_issue", {"title": "a <b> & c", "labels": ["x", "y"]})]),
    ("f3_tool_calls_invoke", '<tool_calls><invoke name="Bash"><parameter name="command">make'
                             '</parameter></invoke></tool_calls>',
     [call("Bash", {"command": "make"})]),
    # F4 (Kimi K2 native)
    ("f4", "<|tool_calls_section_begin|><|tool_call_begin|>functions.Read:0"
           '<|tool_call_argument_begin|>{"file_path": "k2"}<|tool_call_end|>'
           "<|tool_call_begin|>functions.Bash:1<|tool_call_argument_begin|>"
           '{"command": "ls"}<|tool_call_end|><|tool_calls_section_end|>',
     [call("Read", {"file_path": "k2"}), call("Bash", {"command": "ls"})]),
    ("f4_bare", "I'll check.<|tool_call_begin|>Read:3<|tool_call_argument_begin|>"
                '{"file_path": "z"}<|tool_call_end|><|tool_calls_section_end|>',
     ["I'll check.", call("Read", {"file_path": "z"})]),
    # F5 - F7
    ("f5", '<<<TOOL_CALL>>>\n{"name": "Read", "arguments": {"file_path": "five"}}\n'
           "<<<END_TOOL_CALL>>>",
     [call("Read", {"file_path": "five"})]),
    ("f6_brackets", '[function_calls]\n[call:Bash]{"command": "a"}[/call]\n'
                    '[call:Read]{"file_path": "b"}[/call]\n[/function_calls]',
     [call("Bash", {"command": "a"}), call("Read", {"file_path": "b"})]),
    ("f6_tool_use", "<tool_use>\n<name>Read</name>\n<arguments>{\"file_path\": \"c\"}</arguments>\n"
                    "</tool_use>",
     [call("Read", {"file_path": "c"})]),
    ("f7", '  {"name": "Bash", "arguments": {"command": "uptime"}}  ',
     ["  ", call("Bash", {"command": "uptime"})]),
    ("f7_list", '{"tool_calls": [{"name": "Read", "arguments": {"file_path": "q"}}, '
                '{"function": {"name": "Bash", "arguments": "{\\"command\\": \\"x\\"}"}}]}',
     [call("Read", {"file_path": "q"}), call("Bash", {"command": "x"})]),
    ("f7_fenced", '```json\n{"name": "Read", "arguments": {"file_path": "fj"}}\n```\n',
     [call("Read", {"file_path": "fj"})]),
    ("f7_not_a_tool", '{"name": "Alice", "arguments": {"age": 3}}', None),
    ("f7_json_answer", '{"title": "x", "items": [1, 2]}\nThat is the answer.', None),
    ("f7_only_at_start", 'Here: {"name": "Bash", "arguments": {"command": "id"}}', None),
    # names
    ("names", '<tool_call name="read">{"file_path": "1"}</tool_call>'
              '<tool_call name="default_api:Bash">{"command": "2"}</tool_call>'
              '<tool_call name="functions.Read:0">{"file_path": "3"}</tool_call>'
              '<tool_call name="tools.grep">{"pattern": "4"}</tool_call>'
              '<tool_call name="apply-patch">5</tool_call>'
              '<tool_call name="MCP__GITHUB__CREATE_ISSUE">{"title": "6"}</tool_call>',
     [call("Read", {"file_path": "1"}), call("Bash", {"command": "2"}),
      call("Read", {"file_path": "3"}), call("Grep", {"pattern": "4"}),
      call("apply_patch", "5"), call("mcp__github__create_issue", {"title": "6"})]),
    ("unknown_name", 'Sure.\n<tool_call name="WebFetch">{"url": "https://x"}</tool_call>',
     ["Sure.\n", Bad('<tool_call name="WebFetch">{"url": "https://x"}</tool_call>',
                     "unknown tool 'WebFetch'")]),
    ("unknown_in_wrapper", '<function_calls><invoke name="Read"><parameter name="file_path">a'
                           '</parameter></invoke><invoke name="Nope"></invoke></function_calls>',
     [Bad('<function_calls><invoke name="Read"><parameter name="file_path">a</parameter>'
          '</invoke><invoke name="Nope"></invoke></function_calls>', "unknown tool")]),
    # after the calls
    ("text_after_call_dropped", '<tool_call name="Read">{"file_path": "a"}</tool_call>\n'
                                "The file contains: hello world. <tool_call name=\"Bash\">"
                                '{"command": "rm"}</tool_call>',
     [call("Read", {"file_path": "a"})]),
    ("stray_closer_between", '<|tool_call_begin|>Bash:0<|tool_call_argument_begin|>'
                             '{"command": "1"}<|tool_call_end|>\n<|tool_call_end|>\n'
                             '<tool_call name="Read">{"file_path": "2"}</tool_call>',
     [call("Bash", {"command": "1"}), call("Read", {"file_path": "2"})]),
    ("duplicate_dropped", '<tool_call name="Read">{"file_path": "a", "limit": 1}</tool_call>'
                          '<tool_call name="Read">{"limit": 1, "file_path": "a"}</tool_call>',
     [call("Read", {"file_path": "a", "limit": 1})]),
    # end of the reply inside a block
    ("missing_closer", 'Ok.\n<tool_call name="Read">\n{"file_path": "/eof"}\n',
     ["Ok.\n", call("Read", {"file_path": "/eof"})]),
    ("missing_brackets", '<tool_call name="Bash">{"command": "ls", "timeout": 5',
     [call("Bash", {"command": "ls", "timeout": 5})]),
    ("truncated_json", '<tool_call name="Edit">{"file_path": "a.py", "old_string": "def f(',
     [Bad('<tool_call name="Edit">{"file_path": "a.py", "old_string": "def f(', "cut off")]),
    ("truncated_after_key", '<tool_call name="Bash">{"command":',
     [Bad('<tool_call name="Bash">{"command":', "cut off")]),
    ("opener_only", 'Now <tool_call name="Read">',
     ["Now ", Bad('<tool_call name="Read">', "cut off")]),
    ("bad_json_with_closer", '<tool_call name="Read">{file_path: ??}</tool_call> and more',
     [Bad('<tool_call name="Read">{file_path: ??}</tool_call>', "invalid JSON"), " and more"]),
    # fences and inline code
    ("inline_code", 'Write `<tool_call name="Read">{"file_path": "x"}</tool_call>` to call.', None),
    ("double_backtick_inline", 'Use ``<tool_call name="Read">`` then ``</tool_call>``.', None),
    ("fence_example", 'Example:\n```xml\n<tool_call name="Read">\n{"file_path": "x"}\n'
                      "</tool_call>\n```\nThat is the syntax.", None),
    ("fence_then_text_is_text", '```\n<tool_call name="Read">{"file_path": "x"}</tool_call>\n'
                                "```\nlike that", None),
    ("fence_mixed_content", '```\n<tool_call name="Read">{"file_path": "x"}</tool_call>\n'
                            "echo hi\n```\n", None),
    ("fence_other_code", "```python\nif a < b and c<d:\n    x = [call(1)]\n```\ndone <b>", None),
    ("tilde_fence", '~~~\n<tool_call name="Bash">{"command": "x"}</tool_call>\n~~~~\nok', None),
    ("fence_with_call_at_end", 'I will run it:\n```\n<tool_call name="Bash">\n{"command": "ls"}\n'
                               "</tool_call>\n```\n",
     ["I will run it:\n", call("Bash", {"command": "ls"})]),
    ("fence_call_then_call", '```xml\n<tool_call name="Bash">{"command": "a"}</tool_call>\n```\n'
                             '<tool_call name="Read">{"file_path": "b"}</tool_call>',
     [call("Bash", {"command": "a"}), call("Read", {"file_path": "b"})]),
    ("fence_crlf", 'Run:\r\n```\r\n<tool_call name="Bash">{"command": "x"}</tool_call>\r\n```\r\n',
     ["Run:\r\n", call("Bash", {"command": "x"})]),
    ("fence_crlf_example", '```\r\n<tool_call name="Bash">{"command": "x"}</tool_call>\r\n```\r\nok',
     None),
    ("fence_unclosed_at_eof", '```\n<tool_call name="Bash">{"command": "x"}</tool_call>\n',
     [call("Bash", {"command": "x"})]),
    ("indented_code_is_text", "    <b>code</b>\n", None),
    ("backticks_fence_line_inline", '```x``` <tool_call name="Read">{"file_path": "i"}</tool_call>',
     ['```x``` ', call("Read", {"file_path": "i"})]),
    # freeform tool
    ("custom_patch", f'<tool_call name="apply_patch">\n{PATCH_TEXT}\n</tool_call>',
     [call("apply_patch", PATCH_TEXT)]),
    ("custom_patch_crlf", '<tool_call name="apply_patch">\r\n  a\r\n\r\n</tool_call>',
     [call("apply_patch", "  a\r\n")]),
    ("custom_wrapped", '<tool_call name="apply_patch">{"input": "*** Begin Patch\\n*** End Patch"}'
                       "</tool_call>",
     [call("apply_patch", "*** Begin Patch\n*** End Patch")]),
    ("custom_cut_off", 'Patch: <tool_call name="apply_patch">\n',
     ["Patch: ", Bad('<tool_call name="apply_patch">\n', "cut off")]),
    ("custom_missing_closer", '<tool_call name="apply_patch">\n*** Begin Patch\n*** End Patch\n',
     [call("apply_patch", "*** Begin Patch\n*** End Patch")]),
    ("custom_f2", '<tool_call>{"name": "apply_patch", "arguments": {"input": "raw"}}</tool_call>',
     [call("apply_patch", "raw")]),
]


def expected_for(text, expected):
    return [text] if expected is None else expected


@pytest.mark.parametrize("name,text,expected", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario_under_every_chunking(name, text, expected):
    want = expected_for(text, expected)
    for cuts in chunkings(text):
        got, _ = run(text, cuts)
        assert got == want, f"cuts {cuts}"


@pytest.mark.parametrize("name,text,expected",
                         [s for s in SCENARIOS if s[2] is None and "```" not in s[1]
                          and "~~~" not in s[1] and not s[1].lstrip().startswith("{")],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_held_back_text_never_longer_than_the_longest_opener(name, text, expected):
    sieve = ToolSieve(TOOLS)
    shown = ""
    for i, ch in enumerate(text):
        shown += "".join(sieve.feed(ch))
        assert sieve.held <= MAX_OPENER
        assert shown == text[:i + 1 - sieve.held]
    shown += "".join(sieve.close())
    assert shown == text


def test_text_streams_before_the_call_is_complete():
    sieve = ToolSieve(TOOLS)
    assert sieve.feed("Let me look <b>now</b>.\n<tool_") == ["Let me look <b>now</b>.\n"]
    assert sieve.feed('call name="Read">{"file_path"') == []
    assert sieve.feed(': "a"}</tool_call>') == [call("Read", {"file_path": "a"})]
    assert sieve.calls == 1 and not sieve.draining
    assert sieve.feed("\n\n") == [] and not sieve.draining
    assert sieve.feed("It says hi.") == [] and sieve.draining
    assert sieve.feed("more") == [] and sieve.close() == []


def test_text_after_calls_kept_when_not_draining():
    text = '<tool_call name="Read">{"file_path": "a"}</tool_call>\nDone.'
    for cuts in chunkings(text):
        got, sieve = run(text, cuts, drain_after_calls=False)
        assert got == [call("Read", {"file_path": "a"}), "Done."]
        assert not sieve.draining


def test_draining_set_only_by_text_after_a_call():
    _, sieve = run('<tool_call name="Read">{"file_path": "a"}</tool_call>\n  \n')
    assert not sieve.draining and sieve.calls == 1
    _, sieve = run("plain text only")
    assert not sieve.draining and sieve.calls == 0


def test_parallel_off_keeps_the_first_call():
    text = ('<tool_call name="Read">{"file_path": "a"}</tool_call>'
            '<tool_call name="Bash">{"command": "b"}</tool_call>')
    for cuts in chunkings(text, randoms=3):
        got, sieve = run(text, cuts, tool_set=tools(parallel=False))
        assert got == [call("Read", {"file_path": "a"})]
        assert sieve.calls == 1 and sieve.dropped == 1


@pytest.mark.parametrize("choice,error", [
    (tools(ChoiceMode.NONE), "no tool may be called"),
    (tools(ChoiceMode.NAMED, "Bash"), "may not be called here; allowed: Bash"),
    (tools(allowed=("Grep", "Bash")), "allowed: Grep, Bash"),
])
def test_choice_limits_which_calls_count(choice, error):
    text = '<tool_call name="Read">{"file_path": "a"}</tool_call>'
    got, sieve = run(text, tool_set=choice)
    assert got == [Bad(text, error)] and sieve.calls == 0 and sieve.bad_blocks == 1


def test_named_choice_accepts_its_tool():
    got, _ = run('<tool_call name="bash">{"command": "x"}</tool_call>',
                 tool_set=tools(ChoiceMode.NAMED, "Bash"))
    assert got == [call("Bash", {"command": "x"})]


def test_block_larger_than_the_limit_is_released_as_text():
    text = 'A <tool_call name="Bash">{"command": "' + "x" * 300 + '"}</tool_call> B'
    for cuts in chunkings(text, randoms=5):
        got, sieve = run(text, cuts, max_block=200)
        assert got == [text] and sieve.calls == 0
    got, _ = run(text, max_block=400)
    assert got == ["A ", call("Bash", {"command": "x" * 300})]


def test_fenced_block_larger_than_the_limit_is_text():
    text = '```\n<tool_call name="Bash">{"command": "' + "y" * 300 + '"}</tool_call>\n```\n'
    for cuts in chunkings(text, randoms=5):
        got, _ = run(text, cuts, max_block=100)
        assert got == [text]


def test_two_megabyte_call_parses():
    content = "z" * (2 * 1024 * 1024 - 100)
    text = '<tool_call name="Edit">{"file_path": "f", "old_string": "", "new_string": "' + \
        content + '"}</tool_call>'
    sieve = ToolSieve(TOOLS)
    out = []
    for i in range(0, len(text), 65536):
        out += sieve.feed(text[i:i + 65536])
    out += sieve.close()
    assert out == [call("Edit", {"file_path": "f", "old_string": "", "new_string": content})]


def test_outputs_are_the_public_types():
    got, _ = run('x<tool_call name="Nope">{}</tool_call><tool_call name="Read">'
                 '{"file_path": "a"}</tool_call>')
    assert [type(x) for x in got] == [str, BadBlock, ParsedCall]


FRAGMENTS = [
    '<tool_call name="Read">', "<tool_call>", "</tool_call>", '{"file_path": "a"}',
    '{"name": "Bash", "arguments": {"command": "x"}}', "\n", "```", "```json\n", "~~~", "`", " ",
    "text", "<", "[", "<b>", '"', "\\", "{", "}", "<tool_call", "<tool_calls>", "</tool_calls>",
    "<function_calls>", '<invoke name="Bash">', '<parameter name="command">', "</parameter>",
    "</invoke>", "</function_calls>", "<|tool_calls_section_begin|>", "<|tool_call_begin|>",
    "functions.Read:0", "<|tool_call_argument_begin|>", "<|tool_call_end|>",
    "<<<TOOL_CALL>>>", "<<<END_TOOL_CALL>>>", "[function_calls]", "[call:Bash]", "[/call]",
    "<tool_use>", "<name>Read</name>", "你好", "🎉", "    ", "'", '<tool_call name="apply_patch">',
]


@pytest.mark.parametrize("seed", range(4))
def test_random_compositions_are_chunking_invariant(seed):
    """Random mixes of markers, fences, quotes and text: the same result under every split,
    and without calls or draining nothing is lost."""
    import random
    rng = random.Random(seed)
    for _ in range(60):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12)))
        kw = {"drain_after_calls": rng.random() < 0.7}
        if rng.random() < 0.2:
            kw["max_block"] = rng.randint(5, 60)
        want, sieve = run(text, **kw)
        for cuts in chunkings(text, seed=seed, randoms=3):
            got, other = run(text, cuts, **kw)
            assert (got, other.draining) == (want, sieve.draining), (text, kw, cuts)
        if not sieve.calls and not sieve.draining:
            assert "".join(x if isinstance(x, str) else x.raw for x in want) == text
