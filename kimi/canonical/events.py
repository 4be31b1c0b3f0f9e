"""The canonical event stream every dialect encodes from.

The upstream decoder turns frames into these; the turn runner shapes them (kimi.chat.turn);
each dialect's encoder turns them into its wire format; `collect` folds them into one result
for non-streaming answers (one code path for both).

Content events, the closed set an encoder must handle (`assert_never` on anything else):
TextDelta, ReasoningDelta, Citation, ToolCall, Usage, Finish. Control events, which the
SSE writer consumes itself: Started, Flush.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .tools import ToolCall


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"


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
    __slots__ = ("reason", "message", "stop_sequence")

    def __init__(self, reason: FinishReason = FinishReason.STOP, message: str | None = None,
                 stop_sequence: str | None = None):
        self.reason = FinishReason(reason)
        self.message = message              # Kimi's moderation notice, for content_filter
        self.stop_sequence = stop_sequence  # the client's stop sequence that ended the answer


class Usage:
    """Token estimates for the whole logical prompt (not only what went upstream) and the
    answer. Always the last content event of a turn, after Finish."""
    __slots__ = ("prompt_tokens", "completion_tokens", "reasoning_tokens")

    def __init__(self, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0):
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
        self.reasoning_tokens = reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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

Content = TextDelta | ReasoningDelta | Citation | ToolCall | Usage | Finish
Event = Content | Started | Flush


@dataclass
class ChatResult:
    text: str = ""
    reasoning: str = ""
    finish_reason: FinishReason = FinishReason.STOP
    chat_id: str | None = None
    message_id: str | None = None
    finish_message: str | None = None
    stop_sequence: str | None = None
    citations: list = field(default_factory=list)
    tool_calls: list = field(default_factory=list)
    usage: Usage | None = None


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
        elif type(ev) is ToolCall:
            result.tool_calls.append(ev)
        elif type(ev) is Usage:
            result.usage = ev
        elif type(ev) is Finish:
            result.finish_reason = ev.reason
            result.finish_message = ev.message
            result.stop_sequence = ev.stop_sequence
        elif type(ev) is Started:
            result.chat_id = ev.chat_id or result.chat_id
            result.message_id = ev.message_id or result.message_id
    result.text = "".join(text)
    result.reasoning = "".join(reasoning)
    return result
