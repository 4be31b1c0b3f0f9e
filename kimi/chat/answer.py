"""The stages that turn Kimi's answer text into what the request asked for, before the
answer shaper (citations, stop, max_tokens): tool calls found in the text, and structured
(JSON) output. Each says, at the end of an upstream answer, whether one corrective
follow-up in the same chat is needed, and what to ask."""

from __future__ import annotations

import logging
import secrets
import string

import orjson

from ..canonical.tools import ChoiceMode, ToolCall, Tools
from ..tools import EMPTY, NO_CALL, BadBlock, ParsedCall, ToolSieve, corrective_prompt
from ..tools.contract import offered
from ..tools.structured import corrective_json_prompt, first_json_value, validate

log = logging.getLogger("kimi.tools")

_ID_CHARS = string.ascii_letters + string.digits


def new_call_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(24))


class ToolStage:
    """Tool calls out of the answer text (content and thinking). Text before a call streams
    as it comes, except when a call is required: then it is held until a call or the end.
    With tool_choice none no call may come out, but a chat that was told the tools in an
    earlier turn may still write one: its blocks are dropped, the text around them kept."""

    def __init__(self, tools: Tools, id_prefix: str):
        # Only the tools the reply may call (the named one, the allowed subset) resolve.
        self.tools = Tools(specs=offered(tools), choice=tools.choice, parallel=tools.parallel)
        self.id_prefix = id_prefix
        self.hold = tools.choice.mode in (ChoiceMode.REQUIRED, ChoiceMode.NAMED)
        self.drop = tools.choice.mode == ChoiceMode.NONE
        self.calls: list[ToolCall] = []
        self.candidates: list[ParsedCall] = []      # calls seen only in the thinking
        self.bad: list[BadBlock] = []
        self.held: list[str] = []
        self.visible = False                        # any non-blank text shown or held
        self._seen: set[tuple] = set()
        self.begin()

    def begin(self) -> None:
        """A new upstream answer (the first, or a follow-up) gets fresh sieves."""
        # With calls dropped, a reply that is a JSON object is the answer, not a call.
        self.content = ToolSieve(self.tools, drain_after_calls=not self.drop,
                                 whole_json=not self.drop)
        # Thinking is never a whole-reply JSON call: it streams even when it starts with `{`.
        self.thinking = ToolSieve(self.tools, drain_after_calls=False, whole_json=False)
        self.bad, self.held, self.candidates = [], [], []

    @property
    def draining(self) -> bool:
        """Text after the last call is being dropped: the rest of the answer is not needed."""
        return self.content.draining

    def text(self, text: str) -> list:
        return self._content(self.content.feed(text))

    def thinking_done(self) -> list[str]:
        """The answer has begun: reasoning text the thinking sieve still holds (a tail that
        might have become a marker) belongs before it, not after."""
        if not self.thinking.held:
            return []
        held, self.thinking = self.thinking, ToolSieve(self.tools, drain_after_calls=False)
        return self._thoughts(held.close())

    def reasoning(self, text: str) -> list[str]:
        return self._thoughts(self.thinking.feed(text))

    def _thoughts(self, items) -> list[str]:
        out = []
        for item in items:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, ParsedCall):
                self.candidates.append(item)
            # A broken block in the thinking is no answer: it is dropped, not shown.
        return out

    def end(self) -> tuple[list, list[str]]:
        """(content items, reasoning texts) still held at the end of an upstream answer.
        Calls found only in the thinking count when the answer itself has none."""
        thoughts = self._thoughts(self.thinking.close())
        out = self._content(self.content.close())
        if not self.calls and self.candidates:
            out += self._content(self.candidates)
            self.candidates = []
        return out, thoughts

    def problem(self) -> str | None:
        """Why a corrective follow-up is needed, after end(); None when the answer stands."""
        if self.calls or self.tools.choice.mode == ChoiceMode.NONE:
            return None
        if self.bad:
            return f"your tool call block could not be used ({self.bad[0].error})"
        if self.hold:
            return NO_CALL
        if not self.visible:
            return EMPTY
        return None

    def corrective(self, problem: str) -> str:
        return corrective_prompt(self.tools, problem)

    def release(self) -> list[str]:
        """No follow-up will fix it: held text and broken blocks go out as text, never lost."""
        out = self.held + [b.raw for b in self.bad]
        self.held, self.bad = [], []
        return out

    def _content(self, items) -> list:
        out = []
        for item in items:
            if isinstance(item, str):
                self.visible = self.visible or bool(item.strip())
                (self.held if self.hold and not self.calls else out).append(item)
            elif self.drop:
                log.info("dropped a tool call block: tool_choice is none")
            elif isinstance(item, BadBlock):
                self.bad.append(item)
            else:
                out += self._call(item)
        return out

    def _call(self, parsed: ParsedCall) -> list:
        key = (parsed.name, orjson.dumps(parsed.arguments, option=orjson.OPT_SORT_KEYS))
        if key in self._seen:
            return []                   # the same call twice in one reply
        if self.calls and not self.tools.parallel:
            log.info("dropped a second tool call: parallel calls are off")
            return []
        self._seen.add(key)
        # Held text and an earlier broken block go out before the call, in order.
        preamble = (self.held if self.hold else []) + [b.raw for b in self.bad]
        self.held, self.bad = [], []
        call = ToolCall(new_call_id(self.id_prefix), parsed.name, parsed.arguments, parsed.kind,
                        index=len(self.calls))
        self.calls.append(call)
        return preamble + [call]


class JsonStage:
    """Structured output: the whole text is held; at the end the first complete JSON value
    is the answer, checked against the schema."""

    def __init__(self, output):
        self.output = output
        self.parts: list[str] = []
        self.errors: list[str] = []
        self.value = None

    def begin(self) -> None:
        self.parts = []

    def text(self, text: str) -> list:
        self.parts.append(text)
        return []

    def problem(self) -> str | None:
        text = "".join(self.parts)
        self.value = first_json_value(text)
        if self.value is None:
            self.errors = ["the reply contained no complete JSON value"]
        elif self.output.kind == "json_object" and not isinstance(self.value, dict):
            self.errors = ["the reply must be a JSON object"]
        else:
            self.errors = validate(self.value, self.output.schema)
        return "; ".join(self.errors) if self.errors else None

    def corrective(self, problem: str) -> str:
        return corrective_json_prompt(self.errors)

    def release(self) -> list[str]:
        if self.value is not None:
            return [orjson.dumps(self.value).decode()]
        return ["".join(self.parts)]
