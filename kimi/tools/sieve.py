"""ToolSieve: finds tool calls in an answer as it streams (reference §6.5).

Text passes through at once except a tail that could still become an opener (never longer
than the longest opener). A block runs from a confirmed opener to its closer and comes out
whole: a ParsedCall per call, or a BadBlock carrying the raw text. Markers inside code fences
or inline code are text, except a fence holding only valid calls at the end of the reply.
Text after the last call is dropped (it is usually an invented result).

Every decision depends only on the text seen, never on where the chunks were cut, so the
joined output is the same however the answer is chunked.
"""

from __future__ import annotations

import re

import orjson

from kimi.canonical.tools import Tools

from . import markers
from .blocks import BadBlock, BlockError, Catalogue, ParsedCall, parse, whole_reply

MAX_BLOCK = 2 * 1024 * 1024     # characters; a larger block is released as text
FENCE_HEAD = 256                # how far a fence head is read to see whether it holds calls
_SPECIAL = re.compile(r"[<\[`\n]")
_WS = " \t\r\n"

Output = list  # of str | ParsedCall | BadBlock


class ToolSieve:
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
        self._buf += text
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
        i, n = 0, len(buf)
        while i < n:
            if self._line_start:
                step = self._line(buf, i, final)
                if step is None:
                    break
                if step is not True:
                    i = step
                    continue
                self._emit(buf[:i])
                return self._to(self._fence_head, buf[i:])
            if self._fence:
                j = buf.find("\n", i)
                i, self._line_start = (n, False) if j < 0 else (j + 1, True)
                continue
            m = _SPECIAL.search(buf, i)
            if not m:
                i = n
                break
            i = m.start()
            c = buf[i]
            if c == "\n":
                i, self._inline, self._line_start = i + 1, 0, True
            elif c == "`":
                j = i
                while j < n and buf[j] == "`":
                    j += 1
                if j == n and not final:
                    break
                self._inline = 0 if self._inline == j - i else self._inline or j - i
                i = j
            elif self._inline:
                i += 1
            else:
                got = markers.match(buf, i, final)
                if got == "partial":
                    break
                if got is None:
                    i += 1
                    continue
                self._emit(buf[:i])
                return self._open(got[0], buf[i:])
        self._emit(buf[:i])
        self._buf = buf[i:]
        return False

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

    # -- fences -----------------------------------------------------------------------------
    def _fence_head(self, final: bool) -> bool:
        """A fence opens at buf[0]: hold it while its first non-blank line may be a call."""
        buf = self._buf
        j = len(buf) - len(buf.lstrip(" "))
        char, k = buf[j], j
        while k < len(buf) and buf[k] == char:
            k += 1
        e = buf.find("\n", k, FENCE_HEAD + 1)
        known = e >= 0 or final or len(buf) > FENCE_HEAD     # where the fence line ends is known
        end = e if e >= 0 else min(len(buf), FENCE_HEAD + 1)
        if char == "`" and buf.find("`", k, end) >= 0:
            self._line_start = False            # ```x``` is inline code, not a fence
            return self._to(self._text, buf)
        if not known:
            return False
        verdict = self._head_verdict(buf, e, final) if e >= 0 else "plain"
        if verdict is None:
            return False
        self._fence = (char, k - j)
        if verdict == "plain":
            self._emit(buf[:k])
            self._line_start = False
            return self._to(self._text, buf[k:])
        self._fence_json, self._scan = verdict == "json", e + 1
        self._content_at = e + 1
        return self._to(self._fence_body, buf)

    def _head_verdict(self, buf: str, e: int, final: bool):
        """"call" / "json" when the fence's first non-blank line starts a call, "plain" when
        not, None when more text is needed."""
        p = e + 1
        while p < len(buf) and buf[p] in _WS:
            p += 1
        if p > FENCE_HEAD:
            return "plain"
        if p >= len(buf):
            return "plain" if final else None
        if self._virgin and buf[p] == "{":
            return "json"
        got = markers.match(buf, p, final)
        if got == "partial":
            return None
        return "plain" if got is None else "call"

    def _fence_body(self, final: bool) -> bool:
        """Hold the fence until its closing line; keep it as calls only if it holds nothing else."""
        buf, (char, length) = self._buf, self._fence
        closing = re.compile(rf" {{0,3}}{re.escape(char)}{{{length},}}[ \t]*(\n|$)")
        while self._scan <= self._max:
            e = buf.find("\n", self._scan)
            line_end = e + 1 if e >= 0 else len(buf)
            if e < 0 and not final:
                break
            if closing.fullmatch(buf, self._scan, line_end):
                return self._fence_done(buf[:line_end], self._content_at, self._scan,
                                        buf[line_end:])
            if e < 0:
                return self._fence_done(buf, self._content_at, len(buf), "")
            self._scan = line_end
        if self._scan > self._max:
            self._emit(buf[:self._scan])
            self._line_start = True
            return self._to(self._text, buf[self._scan:])
        return False

    def _fence_done(self, raw: str, start: int, end: int, rest: str) -> bool:
        inner = ToolSieve(self._tools, max_block=self._max, whole_json=self._fence_json)
        out = inner.feed(raw[start:end]) + inner.close()
        if inner.calls and not inner.draining and all(
                isinstance(x, ParsedCall) or (isinstance(x, str) and not x.strip(_WS))
                for x in out):
            self._held = (raw, [x for x in out if isinstance(x, ParsedCall)])
            return self._to(self._fence_held, rest)
        self._fence = None
        self._emit(raw)
        self._line_start = raw.endswith("\n")
        return self._to(self._text, rest)

    def _fence_held(self, final: bool) -> bool:
        """Fenced calls count only at the end of the reply or before another call."""
        buf = self._buf
        p = len(buf) - len(buf.lstrip(_WS))
        got = markers.match(buf, p, final) if p < len(buf) else None
        if (p == len(buf) and not final) or got == "partial":
            return False
        raw, calls = self._held
        self._fence = None
        if p == len(buf) or got is not None:
            return self._accept(calls, buf)
        self._emit(raw)
        self._line_start = raw.endswith("\n")
        return self._to(self._text, buf)

    # -- whole-reply JSON (F7) ----------------------------------------------------------------
    def _whole(self, final: bool) -> bool:
        buf = self._buf
        end = self._json_end(buf)
        if end > self._max:
            return self._not_whole(buf)
        if end < 0:
            if final or self._scan > self._max:
                return self._not_whole(buf)
            return False
        if buf[end:].strip(_WS):
            return self._not_whole(buf)
        if not final:
            return False
        try:
            calls = whole_reply(buf[:end], self._cat)
        except BlockError as e:
            return self._bad(buf, str(e), "")
        if calls is None:
            return self._not_whole(buf)
        return self._accept(calls, "")

    def _not_whole(self, buf: str) -> bool:
        self._virgin = False
        return self._to(self._text, buf)

    def _json_end(self, buf: str) -> int:
        """End of the first balanced JSON value in buf (scanned incrementally), or -1."""
        depth, in_str, esc = self._json
        i = self._scan
        for i in range(self._scan, len(buf)):
            c = buf[i]
            if in_str:
                esc, in_str = (False, True) if esc else (c == "\\", c != '"')
            elif c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
        self._json, self._scan = [depth, in_str, esc], len(buf)
        return -1

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
        if m.key == "tool_call" and "name" in self._attrs:
            spec = self._cat.specs.get(self._cat.resolve_name(self._attrs["name"]) or "")
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
                                      orjson.dumps(call.arguments, option=orjson.OPT_SORT_KEYS).decode())
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
