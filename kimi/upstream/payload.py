"""Canonical request -> Kimi `ChatService/Chat` request body (protocol reference, section 4.4)."""

from __future__ import annotations

from ..canonical.request import ModelSpec

SEARCH_TOOL = {"type": "TOOL_TYPE_SEARCH", "search": {}}


def build_chat_payload(spec: ModelSpec, prompt: str, *, chat_id: str | None = None,
                       parent_id: str | None = None, file_ids: tuple[str, ...] = ()) -> dict:
    blocks = [{"message_id": "", "text": {"content": prompt}}]
    blocks += [{"message_id": "", "file": {"id": fid, "status": "PROCESS_STATUS_SUCCESS"}}
               for fid in file_ids]
    message = {"role": "user", "blocks": blocks, "scenario": spec.scenario}
    options: dict = {"thinking": spec.thinking}
    # Kimi: 2026-09 catalogue entries are chosen by options.model and take a reasoning effort
    # from the entry's own list; older entries have neither.
    if spec.upstream_model:
        options["model"] = spec.upstream_model
    effort = reasoning_effort(spec)
    if effort:
        options["reasoning_effort"] = effort
    body: dict = {"scenario": spec.scenario, "message": message, "options": options}
    if spec.search:
        body["tools"] = [SEARCH_TOOL]
    # Kimi: chat_id and parent_id are omitted on a first turn; empty strings may be rejected.
    if chat_id:
        body["chat_id"] = chat_id
    if parent_id:
        message["parent_id"] = parent_id
    if spec.kimiplus_id:
        body["kimiplus_id"] = spec.kimiplus_id
    if spec.agent_mode:
        body["agentMode"] = spec.agent_mode
    return body


# Kimi's efforts, weakest first; OpenAI's names map onto them (OpenAI's default, medium, is
# Kimi's default for agents, HIGH).
EFFORTS = ("REASONING_EFFORT_NONE", "REASONING_EFFORT_LOW", "REASONING_EFFORT_HIGH",
           "REASONING_EFFORT_MAX")
WANTED = {"none": 0, "minimal": 1, "low": 1, "medium": 2, "high": 3}


def reasoning_effort(spec: ModelSpec) -> str | None:
    """The effort to send: only for catalogue entries that offer efforts, the offered one
    nearest to what the client asked (thinking off = NONE where offered)."""
    offered = [e for e in EFFORTS if e in spec.efforts]
    if not offered:
        return None
    if not spec.thinking:
        # Thinking off: NONE where the entry offers it; otherwise the entry's own default.
        if EFFORTS[0] in offered:
            return EFFORTS[0]
        return spec.default_effort if spec.default_effort in offered else None
    if spec.effort in WANTED:
        want = max(1, WANTED[spec.effort])
    elif spec.default_effort in offered and spec.default_effort != EFFORTS[0]:
        return spec.default_effort
    else:
        want = 1
    return min(offered, key=lambda e: (abs(EFFORTS.index(e) - want), EFFORTS.index(e)))
