"""The text a Kimi chat receives for a turn.

Without tools or structured output (the common case, and clients that write their own tool
prompts): a lone user message is sent as is; anything longer becomes one block per message,
`<role>: <text>`, separated by blank lines, in order. Kimi reads this as a transcript and
answers the last user turn.

With tools (kimi.tools holds the contract): the client's system text, the tool contract, the
conversation with past calls and results in the contract's format, and a reminder line last.
A continued chat gets only what is new (tool results, new user text) and the reminder; the
contract again only when the tool list changed.
"""

from __future__ import annotations

import hashlib

import orjson

from ..canonical.request import ChatRequest, Message
from ..canonical.tools import ChoiceMode, Tools
from ..tools import loop_note, neutralise, reminder, render_call, render_contract, render_result
from ..tools.structured import json_instruction


def fold_messages(messages: list[Message]) -> str:
    if len(messages) == 1 and messages[0].role == "user" and not messages[0].tool_calls:
        return messages[0].text
    return "\n\n".join(f"{_label(m)}: {_with_calls(m)}" for m in messages)


def _with_calls(m: Message) -> str:
    """A message's text; an assistant's calls told as what it did (no tools were offered,
    so no call format is taught)."""
    return "\n".join(([m.text] if m.text else []) + [_narrate(c) for c in m.tool_calls])


def _label(m: Message) -> str:
    if m.role == "tool":
        return f"tool result ({m.tool_call_id or m.name})" if m.tool_call_id or m.name \
            else "tool result"
    return m.role


def tools_digest(tools: Tools) -> str | None:
    """What the model is told about tools (the contract lists only the tools a choice allows,
    and none for tool_choice none): a change means the contract is resent."""
    contract = render_contract(tools) if tools else ""
    return hashlib.sha256(contract.encode()).hexdigest()[:32] if contract else None


def build_prompt(req: ChatRequest, new: list[Message], *, history: list[Message] | None = None,
                 told_tools: str | None = None) -> str:
    """The prompt for `new` messages. `history` is what the Kimi chat already holds (None for
    a new chat); `told_tools` the digest of the tools it was told about."""
    if not req.tools and req.output is None:
        return fold_messages(new)
    parts = []
    offered = req.tools and req.tools.choice.mode != ChoiceMode.NONE
    if history is None:
        system = [m for m in new if m.role == "system"]
        if system:
            parts.append("[SYSTEM]\n" + "\n\n".join(m.text for m in system))
        new = [m for m in new if m.role != "system"]
    if offered and (history is None or told_tools != tools_digest(req.tools)):
        parts.append(render_contract(req.tools))
    names = {c.id: c.name for m in (history or []) + new for c in m.tool_calls}
    parts.append(_conversation(new, names, narrative=not offered, first=history is None))
    if req.output is not None:
        parts.append(json_instruction(req.output))
    if req.tools:
        parts.append(reminder(req.tools, loop_note((history or []) + new)))
    return "\n\n".join(p for p in parts if p)


def _conversation(messages: list[Message], names: dict, *, narrative: bool, first: bool) -> str:
    blocks = [_render(m, names, narrative) for m in messages]
    body = "\n\n".join(b for b in blocks if b)
    return f"[CONVERSATION]\n{body}" if first else body


def _render(m: Message, names: dict, narrative: bool) -> str:
    if m.role == "tool":
        name = m.name or names.get(m.tool_call_id)
        return render_result(m.tool_call_id or "", name, m.text, m.is_error)
    text = neutralise(m.text)
    if m.role == "assistant" and m.tool_calls:
        calls = [_narrate(c) if narrative else render_call(c) for c in m.tool_calls]
        text = "\n".join(([text] if text else []) + calls)
    return f"[{m.role}] {text}"


def _narrate(call) -> str:
    args = call.arguments if isinstance(call.arguments, str) else \
        orjson.dumps(call.arguments).decode()
    return f"(called {call.name} with {args})"
