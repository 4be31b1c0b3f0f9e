"""A complete block (opener to closer) into calls: one reader per format family, then one
path through name resolution and the argument pipeline. A block is all or nothing: if any call
in it is unknown or does not parse, the whole block is bad (its raw text goes back as text)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from kimi.canonical.tools import ChoiceMode, ToolKind, Tools, ToolSpec

from . import jsonfix
from .args import ArgError, custom_input, function_arguments
from .markers import Marker
from .names import resolve


@dataclass(frozen=True, slots=True)
class ParsedCall:
    """A complete, valid call found in the text."""
    name: str
    arguments: dict | str
    kind: ToolKind


@dataclass(frozen=True, slots=True)
class BadBlock:
    """A block that looked like a call but did not parse, or named an unknown tool."""
    raw: str            # the exact text of the block, to be released as text
    error: str          # short reason, for the corrective follow-up


class BlockError(ValueError):
    pass


class Catalogue:
    """The request's tools as the parser needs them: which names exist, which may be called."""

    def __init__(self, tools: Tools):
        self.specs = {s.name: s for s in tools.specs}
        self.names = tuple(self.specs)
        choice = tools.choice
        if choice.mode is ChoiceMode.NONE:
            self.allowed: tuple[str, ...] = ()
        elif choice.mode is ChoiceMode.NAMED and choice.name:
            self.allowed = (choice.name,)
        else:
            self.allowed = tuple(choice.allowed) or self.names

    def resolve_name(self, raw_name) -> str | None:
        return resolve(raw_name, self.names) if isinstance(raw_name, str) else None

    def spec(self, raw_name) -> ToolSpec:
        name = self.resolve_name(raw_name)
        if name is None:
            raise BlockError(f"unknown tool {str(raw_name)[:80]!r}")
        if name not in self.allowed:
            if not self.allowed:
                raise BlockError("no tool may be called in this reply")
            raise BlockError(f"tool {name!r} may not be called here; allowed: "
                             + ", ".join(self.allowed))
        return self.specs[name]


def parse(marker: Marker, attrs: dict, body: str, cat: Catalogue, complete: bool):
    """The calls in one block; `body` is the text between the opening tag and the closer.
    `complete` is False when the reply ended before the closer."""
    items = _READERS[marker.key](body, attrs, complete)
    if not items:
        raise BlockError("no tool call found in the block")
    return [_call(cat, name, payload, complete) for name, payload in items]


def _call(cat: Catalogue, raw_name, payload, complete: bool) -> ParsedCall:
    spec = cat.spec(raw_name)
    try:
        if spec.kind is ToolKind.CUSTOM:
            if not complete and not (isinstance(payload, str) and payload.strip()):
                raise ArgError("the call was cut off before its input")
            return ParsedCall(spec.name, custom_input(payload), spec.kind)
        return ParsedCall(spec.name, function_arguments(payload, spec, complete=complete),
                          spec.kind)
    except ArgError as e:
        raise BlockError(f"{spec.name}: {e}") from None


def _tool_call(body: str, attrs: dict, complete: bool):
    name = next((attrs[k] for k in _NAME_ATTRS if k in attrs), None)
    if name is not None:
        payload = body
        if body.lstrip().startswith("<"):
            payload = _xml_arguments(body)
        return [(name, payload)]
    if body.lstrip().startswith("<"):
        return _tool_use(body, attrs, complete)
    return [_named_json(body, complete)]


_NAME_ATTRS = ("name", "tool", "function")


def _named_json(body: str, complete: bool):
    """F2/F5: {"name": X, "arguments": {...}} (also parameters / input / args, an OpenAI
    `function` object, or the arguments flat beside the name)."""
    try:
        value = jsonfix.loads(body, complete=complete)
    except jsonfix.JSONFixError as e:
        raise BlockError(str(e)) from None
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise BlockError('the block must be {"name": ..., "arguments": {...}}')
    for key in ("arguments", "parameters", "input", "args"):
        if key in value:
            return value["name"], value[key]
    return value["name"], {k: v for k, v in value.items() if k != "name"}


def _items(body: str, tag: str):
    """(attrs, inner) of each <tag ...>inner</tag> in `body`."""
    pattern = re.compile(rf"<{tag}(\s[^>]*)?>(.*?)</{tag}\s*>", re.S)
    return [(_attrs(m.group(1) or ""), m.group(2)) for m in pattern.finditer(body)]


_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def _attrs(text: str) -> dict:
    return {m.group(1).lower(): next(g for g in m.groups()[2:] if g is not None)
            for m in _ATTR.finditer(text)}


def _tool_calls(body: str, attrs: dict, complete: bool):
    found = []
    pattern = re.compile(r"<tool_call(\s[^>]*)?>(.*?)(?:</tool_call\s*>|(?=<tool_call[\s>])|$)",
                         re.S)
    for m in pattern.finditer(body):
        found += _tool_call(m.group(2), _attrs(m.group(1) or ""), complete)
    return found or _invokes(body, attrs, complete)


_DSML = re.compile(r"<(/?)[|｜]DSML[|｜]")


def _invokes(body: str, attrs: dict, complete: bool):
    body = _DSML.sub(r"<\1", body)
    return [(a.get("name"), _parameters(inner)) for a, inner in _items(body, "invoke")]


def _parameters(inner: str) -> dict:
    params = {}
    for a, value in _items(inner, "parameter"):
        if "name" in a:
            params[a["name"]] = _xml_value(value, a.get("string"))
    return params


_CDATA = re.compile(r"^\s*<!\[CDATA\[(.*?)\]\]>\s*$", re.S)


def _xml_value(value: str, string: str | None):
    m = _CDATA.match(value)
    if m:
        return m.group(1)
    items = _items(value, "item")
    if items and not re.sub(r"<item(\s[^>]*)?>.*?</item\s*>", "", value, flags=re.S).strip():
        return [_xml_value(v, None) for _, v in items]
    if string == "true":
        return value
    try:
        return jsonfix.decode(value)
    except ValueError:
        if string == "false":
            try:
                return jsonfix.loads(value)
            except jsonfix.JSONFixError:
                pass
        return html.unescape(value) if "&" in value and "<" not in value else value


def _xml_arguments(body: str):
    if "<parameter" in body:
        return _parameters(body)
    for tag in ("arguments", "parameters", "input", "args"):
        found = _items(body, tag)
        if found:
            return found[0][1]
    raise BlockError("no parameters found in the block")


def _tool_use(body: str, attrs: dict, complete: bool):
    names = _items(body, "name")
    if not names:
        raise BlockError("the block has no <name>")
    rest = body.replace(names[0][1], "", 1)
    return [(names[0][1].strip(), _xml_arguments(rest))]


_K2_ITEM = re.compile(r"<\|tool_call_begin\|>(.*?)(?:<\|tool_call_end\|>|$)", re.S)


def _k2_call(body: str, attrs: dict, complete: bool):
    head, sep, args = body.partition("<|tool_call_argument_begin|>")
    if not sep:
        raise BlockError("the call has no <|tool_call_argument_begin|>")
    return [(head.strip(), args)]


def _k2_section(body: str, attrs: dict, complete: bool):
    return [item for m in _K2_ITEM.finditer(body) for item in _k2_call(m.group(1), {}, complete)]


def _bracket_call(body: str, attrs: dict, complete: bool):
    name, sep, args = body.partition("]")
    if not sep:
        raise BlockError("the call has no name")
    return [(name.strip(), args)]


def _brackets(body: str, attrs: dict, complete: bool):
    pattern = re.compile(r"\[call:(.*?)(?:\[/call\]|(?=\[call:)|$)", re.S)
    return [item for m in pattern.finditer(body) for item in _bracket_call(m.group(1), {}, complete)]


_READERS = {
    "tool_call": _tool_call, "arrows": lambda b, a, c: [_named_json(b, c)],
    "tool_calls": _tool_calls, "function_calls": _invokes, "dsml": _invokes,
    "dsml_wide": _invokes, "k2_section": _k2_section, "k2_call": _k2_call,
    "brackets": _brackets, "bracket_call": _bracket_call, "tool_use": _tool_use,
}


def whole_reply(text: str, cat: Catalogue):
    """F7: the whole reply is {"tool_calls": [...]} or {"name": X, "arguments": {...}} with a
    declared X. None when it is not shaped like that (then it is an ordinary JSON answer)."""
    try:
        value = jsonfix.loads(text)
    except jsonfix.JSONFixError:
        return None
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list) and value["tool_calls"]:
        items = [_f7_item(v) for v in value["tool_calls"]]
        if any(item is None for item in items):
            raise BlockError("each entry of tool_calls needs a name and arguments")
        return [_call(cat, name, payload, True) for name, payload in items]
    item = _f7_item(value)
    if item is None or resolve(item[0], cat.names) is None:
        return None
    return [_call(cat, item[0], item[1], True)]


def _f7_item(value):
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    for key in ("arguments", "parameters", "input", "args"):
        if key in value:
            return value["name"], value[key]
    return None
