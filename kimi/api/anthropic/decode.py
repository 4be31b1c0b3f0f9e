"""Anthropic Messages requests -> the canonical request (pure, no I/O).

Lenient the way Claude Code needs: unknown fields, betas and block types are ignored, never a
400 (a newer client must degrade to "ignore and continue"); what the request cannot mean is a
400 that names the field. `cache_control`, `metadata`, `temperature`, `top_p`, `top_k`,
`context_management`, `service_tier` and the like are accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...canonical.request import ChatRequest, Message, ModelSpec
from ...canonical.tools import ChoiceMode, OutputFormat, ToolChoice, Tools, ToolSpec
from ...errors import InvalidRequest
from ..fields import MAX_TOOL_NAME
from .content import decode_content, decode_system

FAMILIES = ("opus", "sonnet", "haiku")
# Anthropic's own server tools: Kimi's web search stands in for the search ones; the others
# (code execution, web fetch, ...) have no counterpart and are left out of the contract.
SEARCH_TOOLS = ("web_search",)


@dataclass(frozen=True, slots=True)
class Decoded:
    req: ChatRequest
    show_thinking: bool         # the answer carries thinking blocks (the request enabled them)
    max_tokens: int | None      # as asked (0 and 1 are answered without Kimi: routes.py)
    # With a web_search server tool: what the answer's server_tool_use block says it searched
    # for (the last user text; Kimi does not tell its own query). None without the tool.
    search_query: str | None = None


def decode_messages_request(body, resolve, aliases, *, count_only: bool = False) -> Decoded:
    """`resolve(name)` is the catalogue's; `aliases` maps a Claude family to a Kimi model
    name. `count_only`: a count_tokens body (no max_tokens)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: a non-empty string is required", param="model")
    max_tokens = None if count_only else _max_tokens(body.get("max_tokens"))
    messages = decode_system(body.get("system")) + _messages(body.get("messages"))
    tools, search = _tools(body)
    spec = _spec(model, resolve, aliases, search)
    shown = _thinking(body.get("thinking"), spec)
    req = ChatRequest(model=model, spec=spec, messages=messages,
                      stream=_bool(body, "stream"), include_usage=True,
                      stop=_stop(body.get("stop_sequences")), max_tokens=max_tokens or None,
                      tools=tools, output=_output(body), call_id_prefix="toolu_",
                      show_reasoning=shown)
    return Decoded(req, shown, max_tokens, _query(messages) if search else None)


def _query(messages) -> str:
    """The last user text, without the framing of Claude Code's WebSearch request."""
    text = next((m.text for m in reversed(messages) if m.role == "user" and m.text), "")
    text = text.strip()
    return text.removeprefix("Perform a web search for the query: ").strip()[:500]


def family_of(model: str) -> str | None:
    """The Claude family a model name stands for (None: not a Claude name). A Claude name of
    another family (a newer one) is taken as the main model, sonnet."""
    low = model.lower()
    if not low.startswith("claude"):
        return None
    return next((f for f in FAMILIES if f in low), "sonnet")


def _spec(model: str, resolve, aliases, search: bool) -> ModelSpec:
    family = family_of(model)
    return resolve(aliases[family] if family else model, search)


def _max_tokens(value) -> int:
    if value is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest("max_tokens: must be an integer of 0 or more", param="max_tokens")
    return value


def _bool(body: dict, key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key}: must be true or false", param=key)
    return value


def _stop(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InvalidRequest("stop_sequences: must be an array of strings", param="stop_sequences")
    return tuple(s for s in value if s)


def _thinking(value, spec: ModelSpec) -> bool:
    """Sets Kimi's thinking from `thinking`; True when the answer shows thinking blocks
    (only when the request enabled them, as Anthropic does)."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("enabled", "adaptive"):
        spec.thinking = True
        return value.get("display") != "omitted"
    if kind == "disabled":
        spec.thinking = False
    return False


def _messages(raw) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages: a non-empty array is required", param="messages")
    out: list[Message] = []
    for i, m in enumerate(raw):
        where = f"messages.{i}"
        if not isinstance(m, dict):
            raise InvalidRequest(f"{where}: must be an object", param=where)
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: must be 'user' or 'assistant'",
                                 param=f"{where}.role")
        out += decode_content(role, m.get("content"), f"{where}.content")
    return out


# --- tools ---------------------------------------------------------------------------------

def _tools(body: dict) -> tuple[Tools, bool]:
    """(the client's tools, whether a server search tool asks for Kimi's web search)."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidRequest("tools: must be an array", param="tools")
    specs, search, servers = [], False, set()
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise InvalidRequest(f"tools.{i}: must be an object", param=f"tools.{i}")
        kind = t.get("type")
        if kind in (None, "custom") or "input_schema" in t:
            specs.append(_tool(t, f"tools.{i}"))
        elif isinstance(kind, str) and kind.startswith(SEARCH_TOOLS):
            search = True
            name = t.get("name")
            servers.add(name if isinstance(name, str) and name else "web_search")
    choice, parallel = _choice(body.get("tool_choice"), specs, servers)
    return Tools(specs=tuple(specs), choice=choice, parallel=parallel), search


def _tool(t: dict, where: str) -> ToolSpec:
    name = t.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOOL_NAME:
        raise InvalidRequest(f"{where}.name: a non-empty string of at most {MAX_TOOL_NAME} "
                             "characters is required", param=f"{where}.name")
    description = t.get("description") or ""
    if not isinstance(description, str):
        raise InvalidRequest(f"{where}.description: must be a string",
                             param=f"{where}.description")
    schema = t.get("input_schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{where}.input_schema: a JSON Schema object is required",
                             param=f"{where}.input_schema")
    return ToolSpec(name, description, schema)


def _choice(raw, specs: list[ToolSpec], servers: set[str]) -> tuple[ToolChoice, bool]:
    """`servers`: the names of the server search tools (not in the contract: naming one in
    tool_choice, as Claude Code's WebSearch request does, means search, and no call)."""
    if raw is None:
        return ToolChoice(), True
    kind = raw.get("type") if isinstance(raw, dict) else None
    parallel = not (isinstance(raw, dict) and raw.get("disable_parallel_tool_use") is True)
    if kind == "auto":
        return ToolChoice(), parallel
    if kind == "none":
        return ToolChoice(ChoiceMode.NONE), parallel
    if kind == "any":
        return ToolChoice(ChoiceMode.REQUIRED), parallel
    if kind == "tool":
        name = raw.get("name")
        if isinstance(name, str) and name in servers and not any(s.name == name for s in specs):
            return ToolChoice(), parallel
        if not any(s.name == name for s in specs):
            raise InvalidRequest(f"tool_choice.name: '{name}' is not one of the tools",
                                 param="tool_choice.name")
        return ToolChoice(ChoiceMode.NAMED, name), parallel
    raise InvalidRequest("tool_choice.type: must be 'auto', 'any', 'tool' or 'none'",
                         param="tool_choice.type")


def _output(body: dict) -> OutputFormat | None:
    """Structured output: `output_config.format` (and the beta's `output_format`)."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest("output_config.format.schema: a JSON Schema object is required",
                             param="output_config.format.schema")
    return OutputFormat("json_schema", schema)
