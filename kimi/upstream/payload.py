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
    body: dict = {"scenario": spec.scenario, "message": message,
                  "options": {"thinking": spec.thinking}}
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
