"""The model catalogue: our stable names, merged with Kimi's live catalogue when we have it.

Names are the seeds' names; flags inside a name combine (`kimi-k2-thinking-search`).
An unknown name falls back to the default model with the flags it contains, as the seeds
treated names as cosmetic. Live entries (upstream `GetAvailableModels`, decoded in
upstream/catalog.py) are listed as `kimi-<key>` and may carry flags too
(`kimi-k2d6-thinking-search`); the seed names then follow the live default scenario.
"""

from __future__ import annotations

import dataclasses
import re

from .request import ModelSpec

DEFAULT_SCENARIO = "SCENARIO_K2D5"
AGENT_SCENARIO = "SCENARIO_OK_COMPUTER"
CONTEXT_256K = 262144      # Kimi: K2.x web chat, "256K" (CONTEXT_LENGTH_L)

MODELS: tuple[tuple[str, str], ...] = (
    ("kimi", "Kimi K2.x chat (default)"),
    ("kimi-thinking", "Kimi K2.x with reasoning (reasoning_content)"),
    ("kimi-search", "Kimi with web search"),
    ("kimi-thinking-search", "Kimi with reasoning and web search"),
    ("kimi-silent", "Kimi with web search, no sources list in the answer"),
    ("kimi-k2", "Kimi K2.x chat"),
    ("kimi-k2-thinking", "Kimi K2.x with reasoning"),
    ("kimi-research", "Closest to the old research mode: reasoning and web search"),
    ("kimi-k1", "Closest to the old K1 reasoning model: reasoning on"),
    ("kimi-math", "Closest to the old math mode: reasoning on"),
    ("kimi-agent", "Kimi agent (OK Computer)"),
    ("kimi-agent-swarm", "Kimi agent swarm (OK Computer, TYPE_ULTRA)"),
)

_AGENT_ID = re.compile(r"^[0-9a-z]{20}$")


def name_flags(low: str) -> tuple[bool, bool, bool]:
    """(thinking, search, silent) as a name spells them."""
    thinking = any(f in low for f in ("think", "k1", "math", "research", "r1"))
    search = any(f in low for f in ("search", "silent", "research"))
    return thinking, search, "silent" in low


def resolve_model(name: str, use_search: bool = False) -> ModelSpec:
    """A name against our static table only (no live catalogue)."""
    return ModelCatalogue().resolve(name, use_search)


class ModelCatalogue:
    """What `/v1/models` lists and how a name becomes a ModelSpec. `update` swaps in a fresh
    live catalogue (whole, so a reader never sees half of one)."""

    def __init__(self) -> None:
        self._live: dict[str, ModelSpec] = {}
        self._default: ModelSpec | None = None
        self.source = "static"

    def update(self, live: list[ModelSpec], default: ModelSpec | None) -> None:
        self._live = {s.id.lower(): s for s in live}
        self._default = default
        self.source = "live" if live else "static"

    def resolve(self, name: str, use_search: bool = False) -> ModelSpec:
        low = name.lower()
        thinking, search, silent = name_flags(low)
        base = self._live_match(low)
        if base is not None:
            spec = dataclasses.replace(base, id=name)
            spec.thinking = spec.thinking or thinking
        else:
            spec = self._seed(name, low)
            spec.thinking = thinking
        spec.search = use_search or search
        spec.silent = silent
        return spec

    def _live_match(self, low: str) -> ModelSpec | None:
        # The longest live id the name starts with: `kimi-k2d6-thinking-search` -> k2d6-thinking.
        hits = [s for key, s in self._live.items()
                if low == key or low.startswith(key + "-") or low == key[len("kimi-"):]]
        return max(hits, key=lambda s: len(s.id), default=None)

    def _seed(self, name: str, low: str) -> ModelSpec:
        if "agent" in low or "ok-computer" in low or "swarm" in low:
            ultra = "swarm" in low or "ultra" in low
            live = self._live_agent("TYPE_ULTRA" if ultra else "TYPE_NORMAL")
            if live is not None:
                return dataclasses.replace(live, id=name, live=False)
            return ModelSpec(id=name, description="", scenario=AGENT_SCENARIO,
                             kimiplus_id="ok-computer",
                             agent_mode="TYPE_ULTRA" if ultra else "TYPE_NORMAL",
                             context_length=CONTEXT_256K)
        base = self._default or ModelSpec(id=name, description="", scenario=DEFAULT_SCENARIO,
                                          context_length=CONTEXT_256K)
        spec = dataclasses.replace(base, id=name, description="", thinking=False, live=False)
        if _AGENT_ID.match(name):
            spec.kimiplus_id = name     # a Kimi+ agent id as the model name (seed behaviour)
        return spec

    def _live_agent(self, mode: str) -> ModelSpec | None:
        agents = [s for s in self._live.values() if s.agent_mode == mode]
        return agents[0] if agents else None

    def list(self) -> list[ModelSpec]:
        out = []
        for name, description in MODELS:
            spec = self.resolve(name)
            spec.description = description
            out.append(spec)
        seen = {s.id for s in out}
        out += [s for s in self._live.values() if s.id not in seen]
        return out


def list_models() -> list[ModelSpec]:
    return ModelCatalogue().list()
