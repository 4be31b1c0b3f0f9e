"""Tools in the canonical model: what a client offers, how it lets the model choose, and the
calls that come back. Every dialect decodes into these and encodes from them.

Kimi's web chat has no function calling: kimi.tools describes these tools in the prompt and
finds the calls in the answer text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ToolKind(StrEnum):
    FUNCTION = "function"       # arguments are a JSON object described by a JSON Schema
    CUSTOM = "custom"           # freeform text input (Codex's apply_patch), kept byte for byte


class ChoiceMode(StrEnum):
    AUTO = "auto"               # the model decides
    NONE = "none"               # no call in this reply
    REQUIRED = "required"       # at least one call (Anthropic "any", Gemini ANY)
    NAMED = "named"             # exactly one call of `ToolChoice.name`


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict | None = None      # JSON Schema of a function tool's arguments
    kind: ToolKind = ToolKind.FUNCTION
    format: str | None = None           # a custom tool's input format (e.g. a grammar), as text


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ChoiceMode = ChoiceMode.AUTO
    name: str | None = None             # the tool, when mode is NAMED
    allowed: tuple[str, ...] = ()       # only these tools may be called (empty: all)


@dataclass(frozen=True, slots=True)
class Tools:
    """A request's tool setup. `specs` empty means the request has no tools at all."""
    specs: tuple[ToolSpec, ...] = ()
    choice: ToolChoice = field(default_factory=ToolChoice)
    parallel: bool = True               # several calls in one reply

    def __bool__(self) -> bool:
        return bool(self.specs)

    def spec(self, name: str) -> ToolSpec | None:
        return next((s for s in self.specs if s.name == name), None)


class ToolCall:
    """A call the model made: in an assistant message of the history, and as an event of the
    answer (emitted whole, once its block has parsed). `arguments` is a dict for a function
    tool and the raw text for a custom one."""
    __slots__ = ("id", "name", "arguments", "kind", "index")

    def __init__(self, id: str, name: str, arguments: dict | str,
                 kind: ToolKind = ToolKind.FUNCTION, index: int = 0):
        self.id, self.name, self.arguments, self.kind, self.index = id, name, arguments, kind, index

    def __repr__(self) -> str:
        return f"ToolCall({self.id!r}, {self.name!r}, kind={self.kind.value}, index={self.index})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, ToolCall) and
                (self.id, self.name, self.arguments, self.kind, self.index) ==
                (other.id, other.name, other.arguments, other.kind, other.index))


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """Structured output: `json_object` (any JSON object) or `json_schema` (valid against
    `schema`)."""
    kind: str = "json_object"           # json_object | json_schema
    schema: dict | None = None
    name: str | None = None
    strict: bool = False
