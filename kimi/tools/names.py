"""Tool-name resolution: the model writes `functions.Read:0`, `default_api:read` or `read-file`
for a tool declared as `Read` / `read_file`. Resolution is strict enough never to guess between
two declared tools: each step must give exactly one match."""

from __future__ import annotations

import re

_PREFIXES = ("functions.", "default_api:", "default_api.", "tools.")
_INDEX_SUFFIX = re.compile(r":\d+$")
_SEPARATORS = re.compile(r"[-_\s]+")


def _strip(name: str) -> str:
    name = _INDEX_SUFFIX.sub("", name.strip())
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if name.startswith(p) and len(name) > len(p):
                name, changed = name[len(p):], True
    return name


def _unique(matches: list[str]) -> str | None:
    found = list(dict.fromkeys(matches))
    return found[0] if len(found) == 1 else None


def resolve(name: str, declared: tuple[str, ...] | list[str]) -> str | None:
    """The declared name `name` stands for, or None. Order: exact; without the `functions.` /
    `default_api:` / `default_api.` / `tools.` prefixes and a `:N` suffix; case-insensitive;
    `-`, `_` and spaces equal; as a last resort the segment after the last dot (vLLM's kimi_k2
    parser does the same). `mcp__server__tool` names are real names and are never cut."""
    if not isinstance(name, str) or not name.strip():
        return None
    if name in declared:
        return name
    bare = _strip(name)
    if bare in declared:
        return bare
    for candidate in (bare, bare.rsplit(".", 1)[-1]):
        lower = candidate.casefold()
        hit = _unique([d for d in declared if d.casefold() == lower])
        if hit:
            return hit
        loose = _SEPARATORS.sub("_", lower)
        hit = _unique([d for d in declared if _SEPARATORS.sub("_", d.casefold()) == loose])
        if hit:
            return hit
    return None
