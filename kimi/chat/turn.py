"""One client turn, whatever the dialect: canonical request in, shaped canonical events out.

The stages run in one fixed order on every upstream event: tool calls found in the text,
structured output, then the answer shaper (citations, stop sequences, max_tokens, sources).
When the answer misses what the request requires (a tool call, valid JSON) one corrective
follow-up goes to the same Kimi chat, inside the same client stream. The turn then commits
its conversation (before the client is told it is done) and reports usage last:

    content events ... Finish, FLUSH, [commit], Usage (when the request wants usage)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

from ..canonical.events import FLUSH, Finish, FinishReason, ReasoningDelta, TextDelta, Usage
from ..canonical.request import ChatRequest, Message, Trace
from ..canonical.shaping import AnswerShaper, ShapeOptions
from ..canonical.tools import ToolCall
from ..tools import render_call, render_contract
from .answer import JsonStage, ToolStage
from .conversations import Plan

# Texts longer than this are counted off the event loop: the count takes about 1 ms per 3,000
# characters of English and per 300 of Chinese. In a thread it still holds the GIL, but the
# loop gets its turn every switch interval (5 ms), which is what this keeps the inline cost under.
COUNT_INLINE_CHARS = 1536


def prompt_texts(req: ChatRequest) -> list[str]:
    """What `usage` counts as the prompt: the whole logical one (every message, past calls,
    the tool contract), even when a continued chat sent only the new turns upstream."""
    prompts = [m.text for m in req.messages]
    prompts += [render_call(c) for m in req.messages for c in m.tool_calls]
    if req.tools:
        prompts.append(render_contract(req.tools))
    return prompts


async def count_prompt(counter, req: ChatRequest) -> int:
    """The prompt tokens `usage` will report, before the turn runs (off the event loop when
    the texts are long)."""
    prompts = prompt_texts(req)
    if sum(map(len, prompts)) <= COUNT_INLINE_CHARS:
        return counter.usage(prompts, "", "")["prompt_tokens"]
    return (await asyncio.to_thread(counter.usage, prompts, "", ""))["prompt_tokens"]


class Turn:
    """Use as `async with service.turn(...) as turn` and iterate `turn.events()`; the
    conversation lock is released, and a chat nobody keeps is deleted, on exit."""

    def __init__(self, service, req: ChatRequest, scope: str, accounts: list, plan: Plan,
                 trace: Trace):
        self.service, self.req, self.scope, self.accounts = service, req, scope, accounts
        self.plan, self.trace = plan, trace
        self.account = None
        self.chat_id: str | None = None
        self.message_id: str | None = None
        self.finished = False
        self.closed_early = False       # cut on purpose (stop, max_tokens, a call) or client gone
        self.started_chat = False       # this turn created the Kimi chat
        self.blobs: list = []           # this turn's attachments, fetched once
        self.committed = False

    @property
    def conversation_id(self) -> str | None:
        return self.plan.conv_id

    def took(self, account, reply, *, new_chat: bool) -> None:
        """An upstream answer of this turn ended (finished, or cut by the consumer)."""
        self.account = account
        if reply.chat_id:
            self.chat_id = reply.chat_id
            self.message_id = reply.message_id or self.message_id
            self.started_chat = self.started_chat or new_chat
        self.finished = reply.finished

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        service, plan = self.service, self.plan
        kept = plan.conv_id is not None and self.committed
        if self.started_chat and self.chat_id and not kept and service.delete_chats:
            # A chat whose answer is not stored (stateless, or never reached the client).
            service.cleanup_later(self.account, self.chat_id)
        if plan.lock is not None:
            plan.lock.release()

    def events(self) -> AsyncIterator:
        return _Run(self).events()

    async def commit(self, answer: Message) -> None:
        """Store the turn in its conversation (a no-op for a stateless turn)."""
        plan = self.plan
        if plan.conv_id is None or not (self.finished or self.closed_early) or self.chat_id is None:
            return
        await self.service.conversations.save(plan, self.req, self.scope, self.account.alias,
                                              self.chat_id, self.message_id, answer)
        self.committed = True
        if plan.abandoned:      # the chat this conversation lived in before a rebuild
            self.service.spawn(self.service.delete_abandoned(*plan.abandoned))


class _Run:
    """The state of one turn's answer across its upstream answers (first and follow-up)."""

    def __init__(self, turn: Turn):
        self.turn, req = turn, turn.req
        self.counter = turn.service.counter
        json_only = req.output is not None     # structured output: the content is the JSON
        self.shaper = AnswerShaper(ShapeOptions(
            stop=req.stop, max_tokens=req.max_tokens, silent=req.spec.silent or json_only,
            think_tags=turn.service.think_tags and not json_only,
            cap_reasoning=req.show_reasoning), self.counter)
        self.tools = ToolStage(req.tools, req.call_id_prefix) if req.tools else None
        self.json = JsonStage(req.output) if req.output is not None else None
        self.texts: list[str] = []      # the content as the client received it
        self.thoughts: list[str] = []
        self.calls: list[ToolCall] = []
        self.upstream = Finish()

    async def events(self) -> AsyncIterator:
        turn, service = self.turn, self.turn.service
        # The prompt is counted while Kimi answers: from its first event (the request is out
        # then), between its frames, not after the last one.
        want, prompt = turn.req.include_usage, None
        count = want or service.count_usage
        try:
            source = service.stream(turn)
            for attempt in range(1 + service.retries):
                async with aclosing(self._read(source)) as events:
                    async for ev in events:
                        if count and prompt is None:
                            prompt = asyncio.ensure_future(count_prompt(self.counter, turn.req))
                        yield ev
                for ev in self._end_of_answer():
                    yield ev
                stage, problem = self._problem()
                if problem is None or attempt == service.retries:
                    break
                turn.trace.note = "follow-up"
                for s in (self.tools, self.json):
                    if s is not None:
                        s.begin()
                source = service.follow_up(turn, stage.corrective(problem))
            for ev in self._finish():
                yield ev
            yield FLUSH                     # the last pieces go out before the store write
            await turn.commit(Message(role="assistant", text="".join(self.texts),
                                      tool_calls=tuple(self.calls)))
            if count:
                usage = await self._usage(await (prompt or count_prompt(self.counter, turn.req)))
                if want:
                    yield usage
        finally:
            if prompt is not None:
                prompt.cancel()         # a turn that ended early: the count is not needed now
            if count and turn.trace.prompt_tokens is None and (self.texts or self.calls):
                turn.trace.count_later = self._count_later

    async def _read(self, source) -> AsyncIterator:
        """Shaped events of one upstream answer, until it ends, the shaper cuts it or the
        text after the last tool call starts (then the rest is not read: closing the
        source cancels it upstream)."""
        async with aclosing(source):
            async for ev in source:
                t = type(ev)
                if t is TextDelta:
                    out = self._text(ev.text)
                elif t is ReasoningDelta:
                    out = self._reasoning(ev.text)
                elif t is Finish:
                    self.upstream = ev      # the turn's own Finish comes after any follow-up
                    continue
                else:
                    out = self.shaper.feed(ev)
                for item in out:
                    yield item
                if self.shaper.cut is not None or (self.tools is not None and self.tools.draining):
                    return

    def _text(self, text: str) -> list:
        if self.tools is None:
            if self.json is None:       # no stage: straight to the shaper
                return self._shaped(self.shaper.text(text))
            return self._after_tools([text])
        out = []
        for t in self.tools.thinking_done():
            out += self._shaped(self.shaper.reasoning(t))
        return out + self._after_tools(self.tools.text(text))

    def _after_tools(self, items) -> list:
        out = []
        for item in items:
            if self.shaper.cut is not None:
                break       # the answer ended at a stop sequence or max_tokens: nothing after
            if type(item) is ToolCall:
                self.calls.append(item)
                out.append(item)
            elif self.json is not None and not self.calls:
                self.json.text(item)
            else:
                out += self._shaped(self.shaper.text(item))
        return out

    def _reasoning(self, text: str) -> list:
        texts = self.tools.reasoning(text) if self.tools is not None else [text]
        out = []
        for t in texts:
            out += self._shaped(self.shaper.reasoning(t))
        return out

    def _shaped(self, events: list) -> list:
        for ev in events:
            if type(ev) is TextDelta:
                self.texts.append(ev.text)
            elif type(ev) is ReasoningDelta:
                self.thoughts.append(ev.text)
        return events

    def _end_of_answer(self) -> list:
        if self.tools is None:
            return []
        items, thoughts = self.tools.end()
        out = self._after_tools(items)
        for t in thoughts:
            out += self._shaped(self.shaper.reasoning(t))
        return out

    def _problem(self) -> tuple:
        """(the stage that wants a follow-up, why) or (None, None): a follow-up is due only
        after a whole, ordinary answer."""
        if self.shaper.cut is not None or self.upstream.reason != FinishReason.STOP \
                or not self.turn.finished or self.calls:
            return None, None
        for stage in (self.tools, self.json):
            problem = stage.problem() if stage is not None else None
            if problem is not None:
                return stage, problem
        return None, None

    def _finish(self) -> list:
        out = []
        if self.tools is not None:
            out += self._after_tools(self.tools.release())
        if self.json is not None and not self.calls:
            if self.json.value is None:
                self.json.problem()
            for text in self.json.release():
                out += self._shaped(self.shaper.text(text))
        reason = FinishReason.TOOL_CALLS if self.calls else self.upstream.reason
        final = self.shaper.finish(Finish(reason, self.upstream.message))
        if self.calls and final and type(final[-1]) is Finish:
            final[-1] = Finish(FinishReason.TOOL_CALLS)
        return out + self._shaped(final)

    def _answer(self) -> tuple[str, str]:
        """(what the answer's usage counts as its text, its reasoning)."""
        return ("".join(self.texts) + "".join(render_call(c) for c in self.calls),
                "".join(self.thoughts))

    def _count_later(self) -> None:
        """The usage of an answer cut short, into the trace (blocking: run in a thread)."""
        counted = self.counter.usage(prompt_texts(self.turn.req), *self._answer())
        trace = self.turn.trace
        trace.prompt_tokens = counted["prompt_tokens"]
        trace.completion_tokens = counted["completion_tokens"]

    async def _usage(self, prompt: int) -> Usage:
        answer, reasoning = self._answer()
        args = ((), answer, reasoning, prompt)
        counted = self.counter.usage(*args) if len(answer) + len(reasoning) <= \
            COUNT_INLINE_CHARS else await asyncio.to_thread(self.counter.usage, *args)
        trace = self.turn.trace     # the console's per-key token estimates
        trace.prompt_tokens, trace.completion_tokens = (counted["prompt_tokens"],
                                                        counted["completion_tokens"])
        return Usage(counted["prompt_tokens"], counted["completion_tokens"],
                     counted["completion_tokens_details"]["reasoning_tokens"])
