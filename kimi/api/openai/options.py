"""OpenAI request knobs the Kimi web chat lacks: what we enforce and what we accept and ignore.

- thinking: `reasoning_effort` (none | minimal | low | medium | high; none forces it off) or a
  `thinking` field (true/false or {"type": "enabled" | "disabled"}); off wins a conflict.
- `stop` (a string or up to 16 strings) and `max_tokens` / `max_completion_tokens` are
  enforced by the gateway (canonical.shaping).
- `temperature`, `top_p`, `presence_penalty`, `frequency_penalty`: accepted (must be numbers)
  and ignored, the web chat has no such settings; `n` must be 1; other OpenAI fields (`seed`,
  `user`, `logit_bias`, `tools`, ...) are ignored.
"""

from __future__ import annotations

from ...canonical.request import ModelSpec
from ...errors import InvalidRequest

EFFORTS = ("none", "minimal", "low", "medium", "high")
IGNORED_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
MAX_STOPS = 16


def apply_thinking(body: dict, spec: ModelSpec) -> None:
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        raise InvalidRequest(f"'reasoning_effort' must be one of {', '.join(EFFORTS)}",
                             param="reasoning_effort")
    wants = _thinking_field(body.get("thinking"))
    if effort is not None:
        wants = (effort != "none") if wants is None else (wants and effort != "none")
        spec.effort = effort
    if wants is not None:
        spec.thinking = wants


def _thinking_field(value) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict) and value.get("type") in ("enabled", "disabled"):
        return value["type"] == "enabled"
    raise InvalidRequest("'thinking' must be true, false or {\"type\": \"enabled\"|\"disabled\"}",
                         param="thinking")


def decode_limits(body: dict) -> tuple[tuple[str, ...], int | None]:
    """(stop sequences, max completion tokens) after checking the ignored knobs' types."""
    for key in IGNORED_NUMBERS:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidRequest(f"'{key}' must be a number", param=key)
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("'n' must be 1: Kimi gives one answer per request", param="n")
    return _stop(body.get("stop")), _max_tokens(body)


def _stop(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if (isinstance(value, list) and len(value) <= MAX_STOPS
            and all(isinstance(s, str) for s in value)):
        return tuple(s for s in value if s)
    raise InvalidRequest(f"'stop' must be a string or an array of at most {MAX_STOPS} strings",
                         param="stop")


def _max_tokens(body: dict) -> int | None:
    limits = []
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{key}' must be a positive integer", param=key)
        limits.append(value)
    return min(limits) if limits else None
