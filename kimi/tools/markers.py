"""The call formats the sieve accepts (reference §6.4): their openers and closers, and the
opening-tag reader. Only this table knows the literals; the sieve and the neutraliser use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Marker:
    key: str
    opener: str                 # the literal that starts a block
    closer: str                 # the literal that ends it
    tag: bool                   # an XML-like tag: needs whitespace or '>' after the literal, then a full tag
    first: str | None           # characters the body may start with (None: anything)
    json_body: bool = False     # one JSON value: closers inside its strings do not count
    next_ends: bool = False     # the next opener of the same kind also ends the block


MARKERS = (
    Marker("tool_call", "<tool_call", "</tool_call>", True, '{<"`', json_body=True, next_ends=True),
    Marker("tool_calls", "<tool_calls", "</tool_calls>", True, "<"),
    Marker("function_calls", "<function_calls", "</function_calls>", True, "<"),
    Marker("dsml", "<|DSML|tool_calls", "</|DSML|tool_calls>", True, "<"),
    Marker("dsml_wide", "<｜DSML｜tool_calls", "</｜DSML｜tool_calls>", True, "<"),
    Marker("k2_section", "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", False, "<"),
    Marker("k2_call", "<|tool_call_begin|>", "<|tool_call_end|>", False, None),
    Marker("arrows", "<<<TOOL_CALL>>>", "<<<END_TOOL_CALL>>>", False, '{`', json_body=True,
           next_ends=True),
    Marker("brackets", "[function_calls]", "[/function_calls]", False, "["),
    Marker("bracket_call", "[call:", "[/call]", False, None),
    Marker("tool_use", "<tool_use", "</tool_use>", True, "<"),
)
MAX_OPENER = max(len(m.opener) for m in MARKERS)
OPEN_CHARS = frozenset(m.opener[0] for m in MARKERS)
# Closers swallowed between calls (a stray section end after bare K2 calls).
STRAY_CLOSERS = tuple(m.closer for m in MARKERS)
# Everything that must never appear intact in text the model reads as data.
ALL_LITERALS = tuple(sorted({m.opener for m in MARKERS} | {m.closer for m in MARKERS} |
                            {"<invoke", "</invoke", "<tool_result", "</tool_result"},
                            key=len, reverse=True))
TAG_DELIMS = frozenset(" \t\r\n>")
MAX_TAG = 512


def match(text: str, i: int, final: bool):
    """At `text[i]`: (Marker, end of literal) for a confirmed opener, "partial" when the text
    ends inside what could still become one (never when `final`), else None."""
    rest = len(text) - i
    partial = False
    for m in MARKERS:
        n = len(m.opener)
        if rest < n:
            if not final and m.opener.startswith(text[i:]):
                partial = True
            continue
        if not text.startswith(m.opener, i):
            continue
        if not m.tag:
            return m, i + n
        if rest == n:
            partial = partial or not final
        elif text[i + n] in TAG_DELIMS:
            return m, i + n
    return "partial" if partial else None


def read_tag(text: str, i: int):
    """Read the rest of an opening tag from `i` (just after its literal): (end, attrs) when
    complete, None when more text is needed, "bad" when this is not a tag after all."""
    start, attrs, n = i, {}, len(text)
    while True:
        j = _skip_ws(text, i)
        if j - start > MAX_TAG:
            return "bad"
        if j >= n:
            return None
        if text[j] == ">":
            return j + 1, attrs
        if j == i:
            return "bad"                    # attributes need whitespace before them
        k = j
        while k < n and (text[k].isalnum() or text[k] in "_:.-"):
            k += 1
        if k >= n:
            return None
        k2 = _skip_ws(text, k)
        if k == j or (k2 < n and text[k2] != "="):
            return "bad"
        if k2 >= n:
            return None
        got = _value(text, _skip_ws(text, k2 + 1))
        if got is None or got == "bad":
            return got
        attrs[text[j:k].lower()], i = got


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _value(text: str, k: int):
    n = len(text)
    if k >= n:
        return None
    if text[k] in "\"'":
        window = text[k + 1:k + 1 + MAX_TAG]
        cut = window.find("\n")
        end = (window if cut < 0 else window[:cut]).find(text[k])
        if end >= 0:
            return text[k + 1:k + 1 + end], k + 2 + end
        return "bad" if cut >= 0 or len(window) >= MAX_TAG else None
    e = k
    while e < n and text[e] not in " \t\r\n>\"'":
        e += 1
    if e >= n:
        return None if e - k <= MAX_TAG else "bad"
    return "bad" if e == k else (text[k:e], e)
