"""The sieve's states that hold text back for longer than an opener: a code fence whose first
line is a call (it counts only if the fence holds nothing but calls and ends the reply), and a
reply that starts with `{` (the whole reply may be one JSON call, F7). Both decide on the text
alone, so chunking cannot change the outcome; both give up past the block size limit."""

from __future__ import annotations

import re

from . import markers
from .blocks import BlockError, ParsedCall, whole_reply

FENCE_HEAD = 256                # how far a fence head is read to see whether it holds calls
WS = " \t\r\n"
_WS = WS


class HeldStates:
    """Mixed into ToolSieve; uses its buffer, output and transitions."""

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
        closing = re.compile(rf" {{0,3}}{re.escape(char)}{{{length},}}[ \t\r]*(\n|$)")
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
        inner = type(self)(self._tools, max_block=self._max, whole_json=self._fence_json)
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

