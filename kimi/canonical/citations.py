"""Kimi's inline citation markers -> `[n]` references that match the sources list.

Kimi: answers cite search results with private-use markers, `U+E3A0 cite U+E3A3 <ref> U+E3A8`
(ref like `web_search:1#2`, sometimes with a `:~:text=...` fragment or several refs joined by
commas); a 2026-08 capture shows the same shape opened by U+1F6E0 and closed by U+1F3A8.
A marker may be split across stream pieces, so the tail that could still become one is held
back until the next piece decides it; half a marker is never sent.
"""

from __future__ import annotations

import re

from .events import Citation

_START = "\ue3a0\U0001F6E0"
_END = "\ue3a8\U0001F3A8"
_BODY = f"[^{_START}{_END}]"
MARKER = re.compile(f"[{_START}]cite\ue3a3({_BODY}{{0,400}}?)[{_END}]")
# A tail that may still grow into a marker: a start char and a prefix of `cite<sep><ref>`.
PARTIAL = re.compile(f"[{_START}](?:c(?:i(?:t(?:e(?:\ue3a3{_BODY}{{0,400}})?)?)?)?)?$")
# Kimi's private-use marker characters are never shown, even when stray.
STRAY = re.compile("[\ue3a0-\ue3a8]")


class CitationRewriter:
    """Numbers sources in arrival order and rewrites markers in a text stream.

    `feed` returns the text that is safe to send and the spans of the `[n]` references in it,
    as (start, end, source) in the coordinates of everything this rewriter has returned."""

    def __init__(self) -> None:
        self.sources: list[Citation] = []
        self._by_ref: dict[str, Citation] = {}
        self._pending = ""
        self.pos = 0            # characters returned so far

    def add(self, source: Citation) -> None:
        if source.ref in self._by_ref:
            return
        numbered = Citation(source.ref, source.url, source.title, number=len(self.sources) + 1)
        self.sources.append(numbered)
        self._by_ref[source.ref] = numbered

    def feed(self, text: str) -> tuple[str, list[tuple[int, int, Citation]]]:
        buf = self._pending + text
        if not self.sources and _START[0] not in buf and _START[1] not in buf:
            self._pending = ""
            return self._plain(buf), []
        hold = PARTIAL.search(buf)
        cut = hold.start() if hold else len(buf)
        self._pending = buf[cut:]
        return self._rewrite(buf[:cut])

    def flush(self) -> str:
        """End of the answer: a held tail that never became a marker."""
        tail, self._pending = self._pending, ""
        if "\ue3a3" in tail:
            return ""           # an unterminated marker: drop it, never show it raw
        return self._plain(tail)

    def _plain(self, text: str) -> str:
        out = STRAY.sub("", text)
        self.pos += len(out)
        return out

    def _rewrite(self, text: str) -> tuple[str, list[tuple[int, int, Citation]]]:
        out, spans, last = [], [], 0
        for m in MARKER.finditer(text):
            out.append(self._plain(text[last:m.start()]))
            last = m.end()
            for ref in m.group(1).split(":~:", 1)[0].split(","):
                source = self._by_ref.get(ref.strip())
                if source is None:
                    continue    # a marker for a result we never saw: drop it
                label = f"[{source.number}]"
                spans.append((self.pos, self.pos + len(label), source))
                out.append(label)
                self.pos += len(label)
        out.append(self._plain(text[last:]))
        return "".join(out), spans


def sources_markdown(sources: list[Citation]) -> tuple[str, list[tuple[int, int, Citation]]]:
    """A clean markdown list of the sources, and the span of each entry in it."""
    head = "\n\n**Sources**\n"
    spans, pos, lines = [], len(head), []
    for s in sources:
        line = f"\n{s.number}. [{_md_text(s.title or s.url)}]({_md_url(s.url)})"
        spans.append((pos + 1, pos + len(line), s))
        pos += len(line)
        lines.append(line)
    return head + "".join(lines), spans


def _md_text(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"([\\\[\]*_`])", r"\\\1", text)


def _md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
