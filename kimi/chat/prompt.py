"""Folding an OpenAI-style history into the single prompt a new Kimi chat receives.

A lone user message is sent as is. Anything longer becomes one block per message,
`<role>: <text>`, separated by blank lines, in order; tool results are labelled with their
call id. Kimi reads this as a transcript and answers the last user turn.
"""

from __future__ import annotations

from ..canonical.request import Message


def fold_messages(messages: list[Message]) -> str:
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].text
    return "\n\n".join(f"{_label(m)}: {m.text}" for m in messages)


def _label(m: Message) -> str:
    if m.role == "tool":
        return f"tool result ({m.name})" if m.name else "tool result"
    return m.role
