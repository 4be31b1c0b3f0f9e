"""ToolSieve: finds tool calls in an answer as it streams (reference §6.5).

Text passes through at once except a tail that could still become an opener (never longer
than the longest opener). A block runs from a confirmed opener to its closer and comes out
whole: a ParsedCall per call, or a BadBlock carrying the raw text. Markers inside code fences
or inline code are text, except a fence holding only valid calls at the end of the reply (or
right before another call). A reply whose first non-blank character is `{` is held until its
first JSON value is complete, since the whole reply may be one call (F7).

Decisions: a complete block naming an undeclared tool, or a tool that tool_choice rules out
(none / named / allowed), is a BadBlock, never a call: the runner shows its raw text or asks
for a correction. A block is all or nothing (one bad call in a wrapper makes the whole block
bad). With parallel off only the first call counts; an exact repeat of a call (same name, same
arguments) in one reply is dropped; both are counted in `dropped`. Text after the last call
is dropped and sets `draining` (unless drain_after_calls is off: then it is text again).

Every decision depends only on the text seen, never on where the chunks were cut, so the
joined output is the same however the answer is chunked.
"""

from __future__ import annotations

import re

from kimi.canonical.tools import Tools

from . import jsonfix, markers
from .blocks import BadBlock, BlockError, Catalogue, ParsedCall, parse
from .held import WS as _WS, HeldStates

MAX_BLOCK = 2 * 1024 * 1024     # characters; a larger block is released as text
_SPECIAL = re.compile(r"[<\[`\n]")

Output = list  # of str | ParsedCall | BadBlock


class ToolSieve(HeldStates):
    def __init__(self, tools: Tools, *, drain_after_calls: bool = True,
                 max_block: int = MAX_BLOCK, whole_json: bool = True):
        self._tools, self._cat = tools, Catalogue(tools)
        self._parallel = tools.parallel
        self._drain = drain_after_calls
        self._max = max_block
        self._buf = ""
        self._out: Output = []
        self._state = self._text
        self._virgin = whole_json       # only whitespace so far: a whole-reply JSON call is possible
        self._line_start, self._fence, self._inline = True, None, 0
        self._seen: set[str] = set()
        self.calls = self.dropped = self.bad_blocks = 0
        self.draining = False

    # -- public ---------------------------------------------------------------------------
    def feed(self, text: str) -> Output:
        # Appended through a local with no other reference, so CPython grows the string in
        # place instead of copying the held block on every piece.
        buf, self._buf = self._buf, ""
        buf += text
        self._buf = buf
        del buf
        self._run(False)
        return self._take()

    def close(self) -> Output:
        self._run(True)
        self._buf = ""
        return self._take()

    @property
    def held(self) -> int:
        """Characters received and not yet decided on."""
        return len(self._buf)

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, final: bool) -> None:
        while self._state(final):
            pass

    def _take(self) -> Output:
        out, self._out = self._out, []
        return out

    def _emit(self, text: str) -> None:
        if not text:
            return
        if text.strip(_WS):
            self._virgin = False
        if self._out and isinstance(self._out[-1], str):
            self._out[-1] += text
        else:
            self._out.append(text)

    def _to(self, state, buf: str) -> bool:
        self._state, self._buf = state, buf
        return True

    # -- TEXT -----------------------------------------------------------------------------
    def _text(self, final: bool) -> bool:
        buf = self._buf
        if self._virgin:
            j = len(buf) - len(buf.lstrip(_WS))
            if j < len(buf) and buf[j] == "{":
                self._emit(buf[:j])
                self._scan, self._json = 0, [0, False, False]
                return self._to(self._whole, buf[j:])
        i = 0
        while i < len(buf):
            step = self._step(buf, i, final)
            if step is None:
                break
            if step is True:
                self._emit(buf[:i])
                return self._to(self._fence_head, buf[i:])
            if isinstance(step, int):
                i = step
                continue
            marker, i = step
            self._emit(buf[:i])
            return self._open(marker, buf[i:])
        self._emit(buf[:i])
        self._buf = buf[i:]
        return False

    def _step(self, buf: str, i: int, final: bool):
        """Scan ordinary text from `i`: the next index, None when more text is needed, True
        when a fence opens at `i`, or (Marker, index) of a confirmed opener."""
        if self._line_start:
            return self._line(buf, i, final)
        if self._fence:
            j = buf.find("\n", i)
            self._line_start = j >= 0
            return len(buf) if j < 0 else j + 1
        m = _SPECIAL.search(buf, i)
        if not m:
            return len(buf)
        i = m.start()
        c = buf[i]
        if c == "\n":
            self._inline, self._line_start = 0, True
            return i + 1
        if c == "`":
            j = i
            while j < len(buf) and buf[j] == "`":
                j += 1
            if j == len(buf) and not final:
                return None
            self._inline = 0 if self._inline == j - i else self._inline or j - i
            return j
        if self._inline:
            return i + 1
        got = markers.match(buf, i, final)
        if got == "partial":
            return None
        return i + 1 if got is None else (got[0], i)

    def _line(self, buf: str, i: int, final: bool):
        """At the start of a line: the index to go on from, True for an opening fence, None
        when more text is needed."""
        n, j = len(buf), i
        while j < n and j - i < 3 and buf[j] == " ":
            j += 1
        if j == n:
            self._line_start = not final
            return None if not final else n
        if j < n and buf[j] == " ":
            self._line_start = False
            return i
        k = j
        while k < n and k - j < 64 and buf[k] == buf[j] and buf[j] in "`~":
            k += 1
        if k == n and not final:
            return None
        run = k - j
        if self._fence:
            return self._fence_close(buf, i, j, k, final)
        self._line_start = False
        if run < 3:
            return i
        return True

    def _fence_close(self, buf: str, i: int, j: int, k: int, final: bool):
        char, length = self._fence
        self._line_start = False
        if k - j < length or buf[j] != char:
            return i
        e = buf.find("\n", k)
        rest = buf[k:] if e < 0 else buf[k:e]
        if rest.strip(_WS):
            return k
        if e < 0 and not final:
            self._line_start = True
            return None
        self._fence = None
        self._line_start = e >= 0
        return len(buf) if e < 0 else e + 1

    # -- CALL -----------------------------------------------------------------------------
    def _open(self, marker, buf: str) -> bool:
        self._virgin = False
        self._marker, self._body_at, self._attrs, self._checked = marker, None, {}, False
        return self._to(self._call, buf)

    def _release_opener(self, upto: int) -> bool:
        """Not a block after all: its opener is text."""
        buf = self._buf
        self._emit(buf[:upto])
        self._line_start = False
        return self._to(self._text, buf[upto:])

    def _call(self, final: bool) -> bool:
        m, buf = self._marker, self._buf
        if self._body_at is None:
            got = markers.read_tag(buf, len(m.opener)) if m.tag else (len(m.opener), {})
            if got is None and not final:
                return False
            if got is None or got == "bad":
                return self._release_opener(len(m.opener))
            self._body_at, self._attrs = got
        if not self._checked:
            j = len(buf) - len(buf[self._body_at:].lstrip(_WS))
            if j == len(buf) and not final:
                return False
            first = self._first_chars()
            if j < len(buf) and first is not None and buf[j] not in first:
                return self._release_opener(self._body_at)
            self._checked, self._scan, self._in_str = True, self._body_at, False
            self._json_aware = m.json_body and first is not None and buf[j:j + 1] in '{"`'
        found = self._find_close(buf, final)
        if found is not None and found[0] > self._max:
            return self._release_opener(self._body_at)
        if found is None:
            if self._scan > self._max:
                return self._release_opener(self._body_at)
            if not final:
                return False
            return self._finish_open(buf)
        start, end = found
        return self._finish(buf[:end], buf[self._body_at:start], buf[end:], True)

    def _first_chars(self) -> str | None:
        """What the body may start with; a freeform tool's body may start with anything."""
        m = self._marker
        name = next((self._attrs[k] for k in ("name", "tool", "function") if k in self._attrs),
                    None)
        if m.key == "tool_call" and name is not None:
            spec = self._cat.specs.get(self._cat.resolve_name(name) or "")
            if spec is not None and spec.kind.value == "custom":
                return None
        return m.first

    def _find_close(self, buf: str, final: bool):
        """(start, end) of the closer, or None. Closers inside the strings of a JSON body do
        not count; for F1/F2/F5 the next opener of the same kind also ends the block."""
        m = self._marker
        if not self._json_aware:
            k = buf.find(m.closer, self._scan)
            if k >= 0:
                return k, k + len(m.closer)
            self._scan = max(self._scan, len(buf) - len(m.closer) + 1)
            return None
        i, n = self._scan, len(buf)
        while i < n:
            c = buf[i]
            if self._in_str:
                if c == "\\":
                    if i + 1 == n:
                        break
                    i += 1
                elif c == '"':
                    self._in_str = False
            elif c == '"':
                self._in_str = True
            elif c == "<":
                if buf.startswith(m.closer, i):
                    return i, i + len(m.closer)
                if m.closer.startswith(buf[i:]) and not final:
                    break
                got = markers.match(buf, i, final) if m.next_ends else None
                if got == "partial":
                    break
                if got is not None and got[0] is m:
                    return i, i
            i += 1
        self._scan = i
        return None

    def _finish_open(self, buf: str) -> bool:
        """The reply ended inside a block: parse what there is (a cut-off body is an error)."""
        body = buf[self._body_at:]
        complete = False
        if self._marker.closer in body:                 # a closer was taken as string content
            body, complete = body[:body.rfind(self._marker.closer)], True
        return self._finish(buf, body, "", complete)

    def _finish(self, raw: str, body: str, rest: str, complete: bool) -> bool:
        try:
            calls = parse(self._marker, self._attrs, body, self._cat, complete)
        except BlockError as e:
            return self._bad(raw, str(e), rest)
        return self._accept(calls, rest)

    def _bad(self, raw: str, error: str, rest: str) -> bool:
        self.bad_blocks += 1
        self._virgin = False
        self._out.append(BadBlock(raw, error))
        self._line_start = raw.endswith("\n")
        return self._to(self._between if self.calls else self._text, rest)

    def _accept(self, calls: list[ParsedCall], rest: str) -> bool:
        self._virgin = False
        for call in calls:
            sig = call.name + "\0" + (call.arguments if isinstance(call.arguments, str) else
                                      jsonfix.dumps(call.arguments, sort_keys=True))
            if sig in self._seen or (self.calls and not self._parallel):
                self.dropped += 1
                continue
            self._seen.add(sig)
            self._out.append(call)
            self.calls += 1
        return self._to(self._between, rest)

    # -- after a call ---------------------------------------------------------------------
    def _between(self, final: bool) -> bool:
        buf, p = self._buf, 0
        while True:
            p += len(buf[p:]) - len(buf[p:].lstrip(_WS))
            stray = next((c for c in markers.STRAY_CLOSERS if buf.startswith(c, p)), None)
            if stray is None:
                break
            p += len(stray)
        if p == len(buf) or (not final and any(c.startswith(buf[p:]) for c in markers.STRAY_CLOSERS)):
            if final:
                self._buf = ""
            return False
        got = markers.match(buf, p, final)
        if got == "partial":
            return False
        if got is not None:
            return self._open(got[0], buf[p:])
        if not self._drain:
            self._line_start, self._fence, self._inline = False, None, 0
            return self._to(self._text, buf[p:])
        self.draining = True
        return self._to(self._drained, "")

    def _drained(self, final: bool) -> bool:
        self._buf = ""
        return False
