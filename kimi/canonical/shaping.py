"""Turning the upstream's events into the answer a client is shown, whatever the dialect.

In order: reasoning optionally rendered as `<think>...</think>` content; citation markers
rewritten to `[n]` (canonical.citations); the answer cut at the first `stop` sequence, even
one split across pieces; the answer cut at `max_tokens`; the sources list appended. Cutting
ends the upstream stream early (the turn runner, kimi/chat/turn.py, stops reading: closing it
cancels the Kimi answer).

Citations leave here with `start`/`end` set: the characters of the content they annotate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .citations import CitationRewriter, sources_markdown
from .events import Citation, Finish, FinishReason, ReasoningDelta, TextDelta

THINK_OPEN, THINK_CLOSE = "<think>\n", "\n</think>\n\n"


@dataclass(frozen=True, slots=True)
class ShapeOptions:
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    silent: bool = False          # no sources list appended to the content
    think_tags: bool = False      # reasoning as <think>...</think> inside the content
    cap_reasoning: bool = True    # max_tokens counts reasoning (not when it is hidden)


class StopMatcher:
    """Finds the first stop sequence across pieces; holds back a tail that may start one."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """(text to show, the stop sequence that ended it or None)."""
        buf = self._pending + text
        hits = [(i, s) for i, s in ((buf.find(s), s) for s in self.stops) if i >= 0]
        if hits:
            self._pending = ""
            at, stop = min(hits, key=lambda h: h[0])
            return buf[:at], stop
        hold = max((k for s in self.stops for k in range(1, min(len(s), len(buf) + 1))
                    if buf.endswith(s[:k])), default=0)
        self._pending = buf[len(buf) - hold:] if hold else ""
        return buf[:len(buf) - hold], None

    def flush(self) -> str:
        tail, self._pending = self._pending, ""
        return tail


class TokenCap:
    """Stops the completion at `limit` tokens, counted exactly on the text so far at every
    piece (the sum of the pieces' own counts is no bound: "'a" + "rell" is 1 + 1 tokens
    apart, 3 together). Only the unsettled tail is counted each time: the pre-tokenised
    pieces before the last few cannot change whatever follows (a piece reaches ahead at most
    for a look-ahead or a `'re`), so they are counted once and dropped."""

    UNSTABLE_PIECES = 3

    def __init__(self, limit: int, counter):
        self.limit, self.counter = limit, counter
        self.stable, self.stable_tokens = 0, 0      # settled: characters and their tokens
        self._tail = ""

    def feed(self, text: str) -> tuple[str, bool]:
        tail = self._tail + text
        counts = self.counter.piece_counts(tail)
        if self.stable_tokens + sum(n for _, n in counts) > self.limit:
            head = self.counter.head(tail, self.limit - self.stable_tokens)
            before = len(tail) - len(text)
            return (head[before:] if len(head) > before else ""), True
        settled = counts[:-self.UNSTABLE_PIECES]
        if settled:
            end = settled[-1][0]
            self.stable += end
            self.stable_tokens += sum(n for _, n in settled)
            tail = tail[end:]
        self._tail = tail
        return text, False


class AnswerShaper:
    """One per answer; each method takes one upstream event and returns the events to send.

    Positions: the rewriter counts "answer" characters (after [n] rewriting); `content`
    counts everything sent as content (think tags and the sources list too). Their difference
    maps a [n] span from one to the other."""

    def __init__(self, options: ShapeOptions, counter=None):
        self.options = options
        self.citations = CitationRewriter()
        self.stop = StopMatcher(options.stop) if options.stop else None
        self.cap = TokenCap(options.max_tokens, counter) if options.max_tokens is not None else None
        self.content = 0            # characters of content sent
        self.answered = 0           # answer characters sent
        self.cut: str | None = None     # finish reason when we end the answer ourselves
        self.stop_sequence: str | None = None   # the stop sequence that cut it
        self.finished = False
        self._thinking = False
        self._spans: list = []      # (start, end, source) in answer coordinates, not yet sent
        self._cited: set[str] = set()

    def feed(self, ev) -> list:
        """The events to send for one upstream event (others pass as they are)."""
        t = type(ev)
        if t is TextDelta:
            return self.text(ev.text)
        if t is ReasoningDelta:
            return self.reasoning(ev.text)
        if t is Citation:
            return self.source(ev)
        if t is Finish:
            return self.finish(ev)
        return [ev]

    def reasoning(self, text: str) -> list:
        if self.cut is not None:
            return []       # what a stage held back at the cut (tool sieves) ends with it
        if self.options.cap_reasoning:
            text = self._capped(text)
        if not text:
            return []
        if not self.options.think_tags:
            return [ReasoningDelta(text)]
        if not self._thinking:
            self._thinking = True
            text = THINK_OPEN + text
        return [self._content(text)]

    def text(self, text: str) -> list:
        if self.cut is not None:
            return []
        out = self._close_think()
        text, spans = self.citations.feed(text)
        self._spans += spans
        return self._answer(out, text)

    def source(self, c: Citation) -> list:
        self.citations.add(c)
        return []

    def finish(self, ev: Finish) -> list:
        if self.finished:
            return []
        out = []
        if self.cut is None:
            out = self._answer(out, self.citations.flush(), final=True)
        out += self._close_think()
        # A reply that ends in tool calls gets no sources list: text after the calls would
        # read as a further message (the Responses API shows it as one).
        if self.cut is None and not self.options.silent and self.citations.sources \
                and ev.reason != FinishReason.TOOL_CALLS:
            out += self._sources_list()
        if self.cut is None:
            out += self._uncited()
        self.finished = True
        return out + [Finish(self.cut or ev.reason, None if self.cut else ev.message,
                             self.stop_sequence)]

    def _answer(self, out: list, text: str, final: bool = False) -> list:
        """Send answer text (stop and cap applied) with the annotations it completes."""
        if self.stop is not None:
            text, hit = self.stop.feed(text)
            if hit is not None:
                self.cut, self.stop_sequence = "stop", hit
            elif final:
                text += self.stop.flush()
        text = self._capped(text)
        shift = self.content - self.answered
        if text:
            out.append(self._content(text))
            self.answered += len(text)
        if not self._spans:
            return out
        ready = [s for s in self._spans if s[1] <= self.answered]
        self._spans = [s for s in self._spans if s[1] > self.answered]
        for start, end, source in ready:
            self._cited.add(source.ref)
            out.append(Citation(source.ref, source.url, source.title, source.number,
                                start + shift, end + shift))
        return out

    def _capped(self, text: str) -> str:
        if self.cap is None or not text:
            return text
        if self.cut == "length":
            return ""
        text, hit = self.cap.feed(text)
        if hit:
            self.cut = "length"
        return text

    def _content(self, text: str) -> TextDelta:
        self.content += len(text)
        return TextDelta(text)

    def _close_think(self) -> list:
        if not self._thinking:
            return []
        self._thinking = False
        return [self._content(THINK_CLOSE)]

    def _sources_list(self) -> list:
        text, spans = sources_markdown(self.citations.sources)
        base = self.content
        out = [self._content(text)]
        for start, end, source in spans:
            if source.ref not in self._cited:
                self._cited.add(source.ref)
                out.append(Citation(source.ref, source.url, source.title, source.number,
                                    base + start, base + end))
        return out

    def _uncited(self) -> list:
        """Sources no text points at (silent mode) still reach the client, as empty spans."""
        return [Citation(s.ref, s.url, s.title, s.number, self.content, self.content)
                for s in self.citations.sources if s.ref not in self._cited]

