"""The canonical event stream every dialect encodes from.

The upstream decoder turns frames into these; the OpenAI encoder turns these into chunks;
`collect` folds them into one result for non-streaming answers (one code path for both).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TextDelta:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class ReasoningDelta:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class Finish:
    __slots__ = ("reason", "message")

    def __init__(self, reason: str = "stop", message: str | None = None):
        self.reason = reason        # stop | length | content_filter
        self.message = message


class Started:
    """Upstream accepted the request: the chat and assistant message ids are known."""
    __slots__ = ("chat_id", "message_id")

    def __init__(self, chat_id: str | None = None, message_id: str | None = None):
        self.chat_id = chat_id
        self.message_id = message_id


Event = TextDelta | ReasoningDelta | Finish | Started


@dataclass
class ChatResult:
    text: str = ""
    reasoning: str = ""
    finish_reason: str = "stop"
    chat_id: str | None = None
    message_id: str | None = None
    parts: list = field(default_factory=list, repr=False)


async def collect(events) -> ChatResult:
    result = ChatResult()
    text, reasoning = [], []
    async for ev in events:
        if type(ev) is TextDelta:
            text.append(ev.text)
        elif type(ev) is ReasoningDelta:
            reasoning.append(ev.text)
        elif type(ev) is Finish:
            result.finish_reason = ev.reason
        elif type(ev) is Started:
            result.chat_id = ev.chat_id or result.chat_id
            result.message_id = ev.message_id or result.message_id
    result.text = "".join(text)
    result.reasoning = "".join(reasoning)
    return result
