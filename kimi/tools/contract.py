"""What the model reads about tools (reference §6.2-6.3): the contract with the client's tools
verbatim, the reminder line that follows tool_choice, past calls and results in the primary
format, the loop note, and the corrective follow-up. Data the model reads (user text, tool
results) is neutralised so that it can never look like a call."""

from __future__ import annotations

import re

from kimi.canonical.tools import ChoiceMode, ToolCall, ToolKind, Tools, ToolSpec

from .jsonfix import dumps
from .markers import ALL_LITERALS
from .schema import properties, required

ZWSP = "\u200b"
_LITERALS = re.compile("|".join(re.escape(x) for x in ALL_LITERALS), re.I)

# The problems corrective_prompt knows by name; any other text is taken as a parse error.
NO_CALL, EMPTY = "no_call", "empty"

_HEAD = """[TOOLS]
You are running inside a client application that can execute the tools listed below for the user.
These are the only tools you can call. Built-in abilities of this chat (web search, code execution,
file reading) are not available here; use the listed tools instead."""

_RULES = """Rules:
1. The body is one JSON object with the tool's parameters, named exactly as in its schema (keep names
   such as "-i" unchanged).{text_rule}
2. {parallel_rule}
3. After your last block, stop. Do not guess or describe the results: they arrive in the next message
   inside <tool_result> blocks.
4. Write these tags only to call a tool. Never put them in a code block or show them as an example.
5. Use only tool names from the list. If no tool is needed, answer normally without any block.
6. Saying you will do something does not do it. If a tool is needed, call it in this reply."""

_PARALLEL = ("To call several tools at once, write several blocks one after another. They run at "
             "the same time,\n   so only combine calls that do not depend on each other.")
_SINGLE = "Call at most one tool per reply."


def offered(tools: Tools) -> tuple[ToolSpec, ...]:
    """The tools the model may call: for a named or restricted choice, only those."""
    choice = tools.choice
    if choice.mode is ChoiceMode.NAMED and choice.name:
        keep = {choice.name}
    elif choice.allowed:
        keep = set(choice.allowed)
    else:
        return tools.specs
    return tuple(s for s in tools.specs if s.name in keep)


def render_contract(tools: Tools) -> str:
    """The [TOOLS] section; empty when the request has no tools or tool_choice is none."""
    specs = offered(tools)
    if not specs or tools.choice.mode is ChoiceMode.NONE:
        return ""
    listing = "\n".join(_render_spec(s) for s in specs)
    text_rule = ("\n   For a tool marked input=\"text\", the body is the raw input instead of JSON."
                 if any(s.kind is ToolKind.CUSTOM for s in specs) else "")
    rules = _RULES.format(text_rule=text_rule,
                          parallel_rule=_PARALLEL if tools.parallel else _SINGLE)
    return (f"{_HEAD}\n\n<tools>\n{listing}\n</tools>\n\n[HOW TO CALL A TOOL]\n"
            "To call a tool, write this block on its own lines (the tag names are literal):\n\n"
            f"{_example(specs)}\n\n{rules}")


def _render_spec(spec: ToolSpec) -> str:
    desc = spec.description.strip()
    if spec.kind is ToolKind.CUSTOM:
        fmt = f"\nInput format:\n{spec.format.strip()}" if spec.format else ""
        return (f'<tool name="{_attr(spec.name)}" input="text">\n{desc}{fmt}\n'
                "Its input is raw text in the format described above, not JSON.\n</tool>")
    schema = spec.parameters if spec.parameters is not None else {"type": "object",
                                                                   "properties": {}}
    return (f'<tool name="{_attr(spec.name)}">\n{desc + chr(10) if desc else ""}'
            f"Parameters (JSON Schema): {dumps(schema)}\n</tool>")


def _example(specs: tuple[ToolSpec, ...]) -> str:
    spec = next((s for s in specs if s.kind is ToolKind.FUNCTION), specs[0])
    if spec.kind is ToolKind.CUSTOM:
        return f'<tool_call name="{_attr(spec.name)}">\n...raw input...\n</tool_call>'
    props = properties(spec.parameters)
    keys = [k for k in required(spec.parameters) if k in props] or list(props)[:1]
    example = {k: _placeholder(props[k]) for k in keys}
    return (f'<tool_call name="{_attr(spec.name)}">\n'
            f"{dumps(example)}\n</tool_call>")


def _placeholder(schema) -> object:
    t = schema.get("type") if isinstance(schema, dict) else None
    t = t[0] if isinstance(t, list) and t else t
    if not isinstance(t, str):
        return "..."
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(t, "...")


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;")


def reminder(tools: Tools, note: str | None = None) -> str:
    """The last line(s) of every prompt that carries tools (the recency anchor)."""
    choice = tools.choice
    if choice.mode is ChoiceMode.NONE or not offered(tools):
        lines = ["[Tools are not available for this reply. Answer in plain text.]"]
    elif choice.mode is ChoiceMode.NAMED and choice.name:
        lines = [f'[This reply must be exactly one <tool_call name="{_attr(choice.name)}"> block '
                 "and nothing else.]"]
    elif choice.mode is ChoiceMode.REQUIRED:
        lines = ["[This reply must contain at least one <tool_call> block.]"]
    else:
        lines = ['[Reminder: call tools with <tool_call name="…"> blocks as described above; '
                 "otherwise answer normally.]"]
    if not tools.parallel and choice.mode not in (ChoiceMode.NONE, ChoiceMode.NAMED):
        lines.append("[Call at most one tool in this reply.]")
    if note:
        lines.append(note if note.startswith("[") else f"[Note: {note}]")
    return "\n".join(lines)


def neutralise(text: str) -> str:
    """`text` with every opener and closer of every accepted format broken by a zero-width
    space after its first character (`<tool_call` -> `<\u200btool_call`): a human reads the
    same text, the sieve sees no marker."""
    return _LITERALS.sub(lambda m: m.group(0)[0] + ZWSP + m.group(0)[1:], text)


def render_call(call: ToolCall, *, narrative: bool = False) -> str:
    """A past call in the primary format, whatever format the model wrote it in. With
    `narrative` (tool_choice none: no contract in the prompt) a neutralised sentence instead."""
    body = call.arguments if isinstance(call.arguments, str) else _json(call.arguments)
    if narrative:
        return f"(called {call.name} with {neutralise(body)})"
    return f'<tool_call name="{_attr(call.name)}">\n{body}\n</tool_call>'


def _json(value) -> str:
    return dumps(value)


def render_result(call_id: str, name: str | None, text: str, is_error: bool = False) -> str:
    """A tool result as the model reads it; its content can close nothing and call nothing."""
    attrs = f' id="{_attr(call_id)}"'
    if name:
        attrs += f' name="{_attr(name)}"'
    if is_error:
        attrs += ' is_error="true"'
    return f"<tool_result{attrs}>\n{neutralise(text)}\n</tool_result>"


def corrective_prompt(tools: Tools, problem: str) -> str:
    """The one follow-up in the same chat: no call though one was required (NO_CALL), an
    empty reply (EMPTY), or any other problem in words (a broken block's parse error)."""
    choice = tools.choice
    if problem == EMPTY:
        return ("Your previous reply had no visible output. Give the final answer or the tool "
                "call now.\n" + reminder(tools))
    if problem == NO_CALL:
        target = (f'<tool_call name="{_attr(choice.name)}">' if choice.mode is ChoiceMode.NAMED
                  and choice.name else "<tool_call>")
        return ("Your previous reply did not call a tool, but this reply must. Reply now with "
                f"only the {target} block, no other text.\n" + reminder(tools))
    names = ", ".join(s.name for s in offered(tools))
    ask = ("Reply now with only the corrected <tool_call> block."
           if choice.mode in (ChoiceMode.REQUIRED, ChoiceMode.NAMED) else
           "If a tool is needed, reply now with only the corrected <tool_call> block; "
           "otherwise give your final answer.")
    return (f"Your previous reply could not be used ({problem}). {ask} The body of a block is "
            'one JSON object (raw text for a tool marked input="text"), and the tool name is one '
            f"from this list: {names}.\n" + reminder(tools))


def loop_note(messages: list) -> str | None:
    """§6.6: when each of the last 3 assistant turns made the same call (same name, same
    arguments) and the results, where present, were the same, the note for the reminder.
    Never blocks anything: the client owns execution."""
    turns = [i for i, m in enumerate(messages) if m.role == "assistant"][-3:]
    if len(turns) < 3:
        return None
    per_turn = [{_signature(c): c for c in getattr(messages[i], "tool_calls", ()) or ()}
                for i in turns]
    for sig, call in per_turn[-1].items():
        if not all(sig in calls for calls in per_turn):
            continue
        results = [_result_of(messages, i, calls[sig].id) for i, calls in zip(turns, per_turn)]
        present = [r for r in results if r is not None]
        if len(set(present)) > 1:
            continue
        return (f"[Note: you already called {call.name} with these exact arguments 3 times and "
                "got the same result. Do not repeat it; use that result or try something else.]")
    return None


def _signature(call: ToolCall) -> str:
    args = call.arguments
    canon = args if isinstance(args, str) else dumps(args, sort_keys=True)
    return f"{call.name}\0{canon}"


def _result_of(messages: list, after: int, call_id: str) -> str | None:
    for m in messages[after + 1:]:
        if m.role == "assistant":
            break
        if m.role == "tool" and (getattr(m, "tool_call_id", None) or m.name) == call_id:
            return m.text
    return None
