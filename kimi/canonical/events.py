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


class Citation:
    """A source the answer may cite. From upstream: `ref` (Kimi's refIndex) with url and title.
    After shaping: `number` is its [n] in the answer, and `start`/`end` the characters of the
    content it annotates (None for a source that no text points at)."""
    __slots__ = ("ref", "url", "title", "number", "start", "end")

    def __init__(self, ref: str, url: str, title: str = "", number: int = 0,
                 start: int | None = None, end: int | None = None):
        self.ref, self.url, self.title = ref, url, title
        self.number, self.start, self.end = number, start, end


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


class Flush:
    """The upstream read that produced the events before it is used up: a writer may send
    what it holds now (the next event may be a network round trip away)."""
    __slots__ = ()


FLUSH = Flush()

Event = TextDelta | ReasoningDelta | Citation | Finish | Started | Flush


@dataclass
class ChatResult:
    text: str = ""
    reasoning: str = ""
    finish_reason: str = "stop"
    chat_id: str | None = None
    message_id: str | None = None
    finish_message: str | None = None
    citations: list = field(default_factory=list)


async def collect(events) -> ChatResult:
    result = ChatResult()
    text, reasoning = [], []
    async for ev in events:
        if type(ev) is TextDelta:
            text.append(ev.text)
        elif type(ev) is ReasoningDelta:
            reasoning.append(ev.text)
        elif type(ev) is Citation:
            result.citations.append(ev)
        elif type(ev) is Finish:
            result.finish_reason = ev.reason
            result.finish_message = ev.message
        elif type(ev) is Started:
            result.chat_id = ev.chat_id or result.chat_id
            result.message_id = ev.message_id or result.message_id
    result.text = "".join(text)
    result.reasoning = "".join(reasoning)
    return result
