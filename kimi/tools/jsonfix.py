"""Lenient JSON: what models write for arguments is almost JSON. This module turns it into JSON
when the intent is clear (trailing commas, raw newlines in strings, single quotes, Python
literals, missing closers) and refuses when the text was cut off (a value is missing), so a
truncated call never becomes an empty or partial object silently."""

from __future__ import annotations

import json
import re

import orjson

_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060]")
_FENCE = re.compile(r"^```[\w+-]*[ \t]*\n(.*?)\n?```$", re.S)
_WORDS = {"True": "true", "False": "false", "None": "null",
          "true": "true", "false": "false", "null": "null", "NaN": "null"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


MAX_DEPTH = 64      # values nested deeper are refused (orjson, used downstream, stops at 255)


class JSONFixError(ValueError):
    pass


def clean(text: str) -> str:
    """Trimmed, without BOM / zero-width characters and one surrounding ``` fence."""
    text = _INVISIBLE.sub("", text).strip()
    m = _FENCE.match(text)
    return m.group(1).strip() if m else text


def loads(text: str, *, complete: bool = True):
    """Parse `text` as JSON, repairing it if needed. `complete=False` means the text may have
    been cut off (no closing marker was seen): then only missing brackets after a finished value
    are added; an open string or a dangling key, comma or colon is an error."""
    text = clean(text)
    try:
        return decode(text)
    except ValueError:
        pass
    fixed = _Repair(text).run(complete)
    try:
        return decode(fixed)
    except JSONFixError:
        raise
    except ValueError as e:
        raise JSONFixError(f"invalid JSON ({e.msg} at character {e.pos})") from None


def decode(text: str):
    """json.loads, lenient about control characters in strings, with lone surrogates from
    `\\ud83c`-style escapes replaced by U+FFFD (they cannot be encoded later)."""
    try:
        value = json.loads(text, strict=False)
        return scrub(value) if "\\u" in text else value
    except RecursionError:
        raise JSONFixError("invalid JSON (nested too deeply)") from None


def dumps(value, *, sort_keys: bool = False) -> str:
    """Compact JSON text. orjson first (fast); values it refuses (nested past 255 levels,
    integers past 64 bits) go through the json module instead of failing the request."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    except TypeError:
        pass
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys,
                          default=str)
    except (RecursionError, ValueError, TypeError):
        return json.dumps(str(value), ensure_ascii=False)


def encodable(value) -> bool:
    """orjson (the encoders' library) can write `value`: no integer past 64 bits, no
    nesting past its limit."""
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def too_deep(value, budget: int = MAX_DEPTH) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return False
    return budget == 0 or any(too_deep(v, budget - 1) for v in value)


def scrub(value):
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


class _Repair:
    """One pass over the text, writing JSON: strings re-quoted and escaped, Python words
    mapped, trailing commas dropped, the first balanced value kept, open brackets closed."""

    def __init__(self, text: str):
        self.text, self.out, self.stack = text, [], []
        self.last = ""          # kind of the last token: open, comma, colon, key, value

    def run(self, complete: bool) -> str:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            c = text[i]
            if c in "\"'":
                i = self._string(i)
                if i < 0:                      # the text ends inside a string
                    if not complete:
                        raise JSONFixError("the arguments were cut off inside a string")
                    self.out.append('"')
                    self.last = "value"
                    break
            elif c in "{[":
                self.stack.append("}" if c == "{" else "]")
                self._emit(c, "open")
                i += 1
            elif c in "}]":
                self._drop_comma()
                if self.stack:
                    self.stack.pop()
                self._emit(c, "value")
                i += 1
                if not self.stack:
                    return "".join(self.out)   # trailing garbage is dropped
            elif c.isalpha():
                j = i
                while j < n and (text[j].isalnum() or text[j] == "_"):
                    j += 1
                self._emit(_WORDS.get(text[i:j], text[i:j]), "value")
                i = j
            else:
                if c == ",":
                    self.last = "comma"
                elif c == ":":
                    self.last = "colon"
                elif not c.isspace():
                    self.last = "value"
                self.out.append(c)
                i += 1
        return self._close(complete)

    def _emit(self, s: str, kind: str) -> None:
        self.out.append(s)
        self.last = kind

    def _drop_comma(self) -> None:
        k = len(self.out) - 1
        while k >= 0 and self.out[k].isspace():
            k -= 1
        if k >= 0 and self.out[k] == ",":
            del self.out[k]

    def _string(self, i: int) -> int:
        """Copy the string starting at `i` as a JSON string; the index after it, or -1."""
        text, quote, n = self.text, self.text[i], len(self.text)
        key = self.stack[-1:] == ["}"] and self.last in ("open", "comma")
        buf = ['"']
        i += 1
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n:
                nxt = text[i + 1]
                buf.append("'" if nxt == "'" else c + nxt)
                i += 2
                continue
            if c == quote:
                buf.append('"')
                self.out.append("".join(buf))
                self.last = "key" if key else "value"
                return i + 1
            buf.append('\\"' if c == '"' else _CONTROL.get(c, c if c >= " " else f"\\u{ord(c):04x}"))
            i += 1
        self.out.append("".join(buf))
        return -1

    def _close(self, complete: bool) -> str:
        if not complete and self.last in ("comma", "colon", "key", "open"):
            raise JSONFixError("the arguments were cut off")
        self._drop_comma()
        if self.last == "colon":
            self.out.append("null")
        return "".join(self.out) + "".join(reversed(self.stack))
