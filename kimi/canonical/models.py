"""The model table: one list feeds /v1/models and the name -> upstream mapping.

Names are the seeds' names; flags inside a name combine (`kimi-k2-thinking-search`).
An unknown name falls back to the default model with the flags it contains, as the seeds
treated names as cosmetic.
"""

from __future__ import annotations

import re

from .request import ModelSpec

DEFAULT_SCENARIO = "SCENARIO_K2D5"
AGENT_SCENARIO = "SCENARIO_OK_COMPUTER"

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
)

_AGENT_ID = re.compile(r"^[0-9a-z]{20}$")


def resolve_model(name: str, use_search: bool = False) -> ModelSpec:
    low = name.lower()
    spec = ModelSpec(id=name, description="")
    spec.thinking = any(f in low for f in ("think", "k1", "math", "research", "r1"))
    spec.search = use_search or any(f in low for f in ("search", "silent", "research"))
    spec.silent = "silent" in low
    if "agent" in low or "ok-computer" in low or "swarm" in low:
        spec.scenario = AGENT_SCENARIO
        spec.kimiplus_id = "ok-computer"
        spec.agent_mode = "TYPE_ULTRA" if "swarm" in low or "ultra" in low else "TYPE_NORMAL"
    elif _AGENT_ID.match(name):
        # A Kimi+ agent id as the model name (seed behaviour).
        spec.kimiplus_id = name
    return spec


def list_models() -> list[ModelSpec]:
    out = []
    for name, description in MODELS:
        spec = resolve_model(name)
        spec.description = description
        out.append(spec)
    return out
