"""Tools and helpers shared by the kimi.tools tests: a Claude-Code-like tool set and a runner
that feeds a text to a ToolSieve in given pieces and returns the merged output."""

from __future__ import annotations

import random

from kimi.canonical.tools import ChoiceMode, ToolChoice, ToolKind, Tools, ToolSpec
from kimi.tools import BadBlock, ParsedCall, ToolSieve

READ = ToolSpec("Read", "Reads a file from the local filesystem.", {
    "type": "object", "properties": {"file_path": {"type": "string"},
                                     "limit": {"type": "integer"}, "offset": {"type": "number"}},
    "required": ["file_path"]})
BASH = ToolSpec("Bash", "Runs a shell command.", {
    "type": "object", "properties": {"command": {"type": "string"},
                                     "timeout": {"type": "integer"},
                                     "run_in_background": {"type": "boolean"}},
    "required": ["command"]})
GREP = ToolSpec("Grep", "Searches files.", {
    "type": "object", "additionalProperties": False,
    "properties": {"pattern": {"type": "string"}, "-i": {"type": "boolean"},
                   "-n": {"type": "boolean"},
                   "output_mode": {"enum": ["content", "files_with_matches", "count"]},
                   "glob": {"type": "string"}},
    "required": ["pattern"]})
EDIT = ToolSpec("Edit", "Edits a file.", {
    "type": "object", "properties": {"file_path": {"type": "string"},
                                     "old_string": {"type": "string"},
                                     "new_string": {"type": "string"},
                                     "replace_all": {"type": "boolean"}},
    "required": ["file_path", "old_string", "new_string"]})
ISSUE = ToolSpec("mcp__github__create_issue", "Opens an issue.", {
    "type": "object", "properties": {"title": {"type": "string"},
                                     "labels": {"type": "array", "items": {"type": "string"}}},
    "required": ["title"]})
PATCH = ToolSpec("apply_patch", "Applies a patch.", kind=ToolKind.CUSTOM,
                 format="start: begin_patch hunk+ end_patch")
TOOLS = Tools(specs=(READ, BASH, GREP, EDIT, ISSUE, PATCH))


def tools(mode: ChoiceMode = ChoiceMode.AUTO, name: str | None = None,
          parallel: bool = True, allowed: tuple[str, ...] = ()) -> Tools:
    return Tools(specs=TOOLS.specs, choice=ToolChoice(mode, name, allowed), parallel=parallel)


def call(name: str, arguments, kind: ToolKind = ToolKind.FUNCTION) -> ParsedCall:
    if isinstance(arguments, str) and name == "apply_patch":
        kind = ToolKind.CUSTOM
    return ParsedCall(name, arguments, kind)


class Bad:
    """Matches a BadBlock with this raw text whose error contains `error`."""

    def __init__(self, raw: str, error: str = ""):
        self.raw, self.error = raw, error

    def __eq__(self, other) -> bool:
        return (isinstance(other, BadBlock) and other.raw == self.raw
                and self.error in other.error)

    def __repr__(self) -> str:
        return f"Bad({self.raw!r}, {self.error!r})"


def merge(out: list) -> list:
    merged: list = []
    for item in out:
        if isinstance(item, str):
            if not item:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] += item
                continue
        merged.append(item)
    return merged


def run(text: str, cuts=(), tool_set: Tools = TOOLS, **kw):
    """Feed `text` cut at `cuts`; (merged output, the sieve)."""
    sieve = ToolSieve(tool_set, **kw)
    out, prev = [], 0
    for cut in list(cuts) + [len(text)]:
        out += sieve.feed(text[prev:cut])
        prev = cut
    out += sieve.close()
    return merge(out), sieve


def chunkings(text: str, seed: int = 7, randoms: int = 12):
    """Every single split point, one piece per character, and random cuts (fixed seed)."""
    n = len(text)
    yield from ((i,) for i in range(n + 1))
    yield tuple(range(1, n))
    rng = random.Random(seed)
    for _ in range(randoms):
        yield tuple(sorted(rng.sample(range(1, n), min(n - 1, rng.randint(1, 12))))) if n > 1 \
            else ()
