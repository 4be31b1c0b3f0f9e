"""Responses `tools` and `tool_choice` -> canonical tools.

Function tools are flat (`{"type": "function", "name", "description", "parameters"}`);
`custom` tools are freeform (Codex's `apply_patch` with a Lark grammar), their calls carry raw
text. `web_search` (and its dated variants) turns Kimi's own search on for the turn. Other
hosted tools (local_shell, file_search, mcp, ...) are not offered to the model.
"""

from __future__ import annotations

from ...canonical.tools import ChoiceMode, ToolChoice, ToolKind, Tools, ToolSpec
from ...errors import InvalidRequest
from ..fields import tool_name_and_description



def decode_tools(body: dict) -> tuple[Tools, bool]:
    """(tools, whether web search is on)."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    specs, search = [], False
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise InvalidRequest(f"tools[{i}] must be an object", param=f"tools[{i}]")
        kind = t.get("type")
        if isinstance(kind, str) and kind.startswith("web_search"):
            search = True
        elif kind in ("function", "custom"):
            specs.append(_tool(t, kind, f"tools[{i}]"))
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be true or false",
                             param="parallel_tool_calls")
    specs = tuple(specs)
    return Tools(specs=specs, choice=_choice(body.get("tool_choice"), specs),
                 parallel=parallel is not False), search


def _tool(t: dict, kind: str, where: str) -> ToolSpec:
    inner = t["function"] if isinstance(t.get("function"), dict) else t   # nested, leniently
    name, description = tool_name_and_description(inner, where)
    if kind == "custom":
        return ToolSpec(name, description, None, ToolKind.CUSTOM, _format(inner.get("format")))
    schema = inner.get("parameters")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequest(f"{where}.parameters must be a JSON Schema object",
                             param=f"{where}.parameters")
    return ToolSpec(name, description, schema)


def _format(fmt) -> str | None:
    """A custom tool's input format as the model is told it: a grammar's own text."""
    if not isinstance(fmt, dict) or fmt.get("type") != "grammar":
        return None
    definition = fmt.get("definition")
    if not isinstance(definition, str) or not definition.strip():
        return None
    return f"{fmt.get('syntax') or 'lark'} grammar:\n{definition}"


def _choice(raw, specs: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None or raw == "auto":
        return ToolChoice()
    if raw in ("none", "required"):
        return ToolChoice(ChoiceMode(raw))
    if isinstance(raw, dict):
        kind = raw.get("type")
        if kind == "allowed_tools":
            listed = raw.get("tools") or []
            if not isinstance(listed, list):
                raise InvalidRequest("tool_choice.tools must be an array",
                                     param="tool_choice.tools")
            names = [t.get("name") for t in listed if isinstance(t, dict)]
            mode = ChoiceMode.REQUIRED if raw.get("mode") == "required" else ChoiceMode.AUTO
            return ToolChoice(mode, allowed=tuple(n for n in names
                                                  if any(s.name == n for s in specs)))
        if kind in ("function", "custom"):
            name = raw.get("name")
            if not any(s.name == name for s in specs):
                raise InvalidRequest(f"tool_choice names '{name}', which is not in 'tools'",
                                     param="tool_choice")
            return ToolChoice(ChoiceMode.NAMED, name)
        if isinstance(kind, str):
            return ToolChoice()     # a hosted tool (web_search, mcp, ...): the model decides
    raise InvalidRequest("'tool_choice' must be \"auto\", \"none\", \"required\" or "
                         "{\"type\": \"function\", \"name\": ...}", param="tool_choice")
