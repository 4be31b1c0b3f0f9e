"""Pure answer shaping: citation markers, stop sequences, token caps, think tags, sources."""

import random
from contextlib import aclosing

import pytest

from kimi.canonical.citations import CitationRewriter, sources_markdown
from kimi.canonical.events import Citation, Finish, ReasoningDelta, TextDelta, collect
from kimi.canonical.shaping import AnswerShaper, ShapeOptions, StopMatcher, TokenCap
from kimi.usage import O200K_SHA256, load_counter

E3A0 = "\ue3a0cite\ue3a3{}\ue3a8"
Y2026 = "\U0001F6E0cite\ue3a3{}\U0001F3A8"
SOURCES = [Citation("web_search:1#0", "https://a.example", "Alpha"),
           Citation("web_search:1#1", "https://b.example", "Beta [draft]")]


def rewrite_in_pieces(text: str, size: int) -> str:
    rw = CitationRewriter()
    for s in SOURCES:
        rw.add(s)
    out = [rw.feed(text[i:i + size])[0] for i in range(0, len(text), size)]
    return "".join(out) + rw.flush()


@pytest.mark.parametrize("raw,shown", [
    ("One." + E3A0.format("web_search:1#0") + " Two.", "One.[1] Two."),
    ("One." + Y2026.format("web_search:1#1") + " Two.", "One.[2] Two."),
    ("A" + E3A0.format("web_search:1#0,web_search:1#1"), "A[1][2]"),
    ("A" + E3A0.format("web_search:1#1:~:text=Beta%20x"), "A[2]"),
    ("A" + E3A0.format("web_search:9#9") + "B", "AB"),                 # unknown result: dropped
    ("stray \ue3a0\ue3a3 private use", "stray  private use"),
    ("tools \U0001F6E0 and art \U0001F3A8", "tools \U0001F6E0 and art \U0001F3A8"),
    ("ends mid-marker \U0001F6E0cite\ue3a3web_se", "ends mid-marker "),   # never half a marker
    ("ends on an emoji \U0001F6E0", "ends on an emoji \U0001F6E0"),
])
def test_markers_at_every_split_point(raw, shown):
    for size in range(1, len(raw) + 1):
        assert rewrite_in_pieces(raw, size) == shown, f"piece size {size}"


def test_rewriter_spans_point_at_the_references():
    rw = CitationRewriter()
    for s in SOURCES:
        rw.add(s)
    text, spans = rw.feed("x" + E3A0.format("web_search:1#1") + "yz" + E3A0.format("web_search:1#0"))
    assert text == "x[2]yz[1]"
    assert [(a, b, s.number) for a, b, s in spans] == [(1, 4, 2), (6, 9, 1)]


def test_sources_markdown_is_clean_and_escaped():
    rw = CitationRewriter()
    for s in SOURCES + [Citation("r3", "https://c.example/a b(1)", "")]:
        rw.add(s)
    text, spans = sources_markdown(rw.sources)
    assert text == ("\n\n**Sources**\n\n1. [Alpha](https://a.example)"
                    "\n2. [Beta \\[draft\\]](https://b.example)"
                    "\n3. [https://c.example/a b(1)](https://c.example/a%20b%281%29)")
    assert [text[a:b] for a, b, _ in spans][0] == "1. [Alpha](https://a.example)"


@pytest.mark.parametrize("stops,pieces,shown,hit", [
    (("END",), ["abc E", "N", "D more"], "abc ", True),
    (("END",), ["abc E", "NX"], "abc ENX", False),
    (("\n\n", "###"), ["a\n", "b#", "##c"], "a\nb", True),
    (("xyz",), ["xy"], "xy", False),
])
def test_stop_matcher_across_pieces(stops, pieces, shown, hit):
    m = StopMatcher(stops)
    out, seen = [], False
    for p in pieces:
        text, h = m.feed(p)
        out.append(text)
        if h:
            seen = True
            break
    if not seen:
        out.append(m.flush())
    assert ("".join(out), seen) == (shown, hit)


async def events(*items):
    for item in items:
        yield item


async def shape(events, options, counter=None):
    """The shaper alone, driven as the turn runner drives it: it stops reading at a cut."""
    shaper = AnswerShaper(options, counter)
    async with aclosing(events):
        async for ev in events:
            for item in shaper.feed(ev):
                yield item
            if shaper.cut is not None:
                for item in shaper.finish(Finish()):
                    yield item
                return


async def shaped(items, **options):
    return await collect(shape(events(*items), ShapeOptions(**options), load_counter()))


async def test_think_tags_wrap_reasoning_and_keep_citation_offsets():
    r = await shaped([SOURCES[0], ReasoningDelta("hm"), ReasoningDelta("m"),
                      TextDelta("Yes" + E3A0.format("web_search:1#0")), Finish()],
                     think_tags=True, silent=True)
    assert r.text == "<think>\nhmm\n</think>\n\nYes[1]" and r.reasoning == ""
    assert [(c.start, c.end) for c in r.citations] == [(len(r.text) - 3, len(r.text))]


async def test_token_cap_is_exact_on_the_whole_text():
    counter = load_counter()
    text = "The quick brown fox jumps over the lazy dog. " * 5
    r = await shaped([TextDelta(text[i:i + 2]) for i in range(0, len(text), 2)] + [Finish()],
                     max_tokens=12)
    assert r.finish_reason == "length" and counter.count(r.text) == 12
    assert text.startswith(r.text)


async def test_upstream_finish_passes_when_nothing_cuts():
    r = await shaped([TextDelta("a"), Finish("content_filter", "blocked")], stop=("zz",),
                     max_tokens=100)
    assert (r.text, r.finish_reason, r.finish_message) == ("a", "content_filter", "blocked")


async def test_a_cut_closes_the_upstream_stream():
    closed = []

    async def upstream():
        try:
            for i in range(1000):
                yield TextDelta(f"piece {i} ")
        finally:
            closed.append(True)

    r = await collect(shape(upstream(), ShapeOptions(stop=("piece 3",))))
    assert r.text == "piece 0 piece 1 piece 2 " and r.finish_reason == "stop" and closed


def test_the_shipped_encoding_is_openais_o200k_base():
    counter = load_counter()
    assert counter.encode("hello world") == [24912, 2375]
    assert len(counter) == 199998       # the mergeable tokens (counting needs no special ones)
    assert len(O200K_SHA256) == 64
    assert counter.head("Hello \u4e2d\u6587 world", 2) == "Hello \u4e2d\u6587"
    assert counter.usage(["Hi"], "", "") == {
        "prompt_tokens": counter.count("Hi") + 6, "completion_tokens": 0, "total_tokens":
        counter.count("Hi") + 6, "completion_tokens_details": {"reasoning_tokens": 0}}


CAP_TEXTS = [
    "The quick brown fox jumps over the lazy dog. They're sure it'll work, WE'LL see. " * 6,
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002" * 12,
    "x = 12345678901234567890\n\n    if x:\r\n\t\treturn x  \n   \n" * 8,
    "emoji \U0001F600\U0001F44D\u200d\U0001F525 mixed \u00e9\u0301 text' s 'S 'LL   " * 8,
]


class WholeTextCap:
    """The plain way: count everything received so far at each piece, cut by its head."""

    def __init__(self, limit: int, counter):
        self.limit, self.counter, self.text = limit, counter, ""

    def feed(self, piece: str) -> tuple[str, bool]:
        before, self.text = self.text, self.text + piece
        if self.counter.count(self.text) <= self.limit:
            return piece, False
        return self.counter.head(self.text, self.limit)[len(before):], True


@pytest.mark.parametrize("text", CAP_TEXTS, ids=["english", "chinese", "code", "mixed"])
def test_token_cap_cuts_where_a_count_of_the_whole_text_would(text):
    """The cap counts only a tail near the limit; what it lets through must be exactly what
    counting everything received at every piece would let through, however it is split."""
    counter = load_counter()
    total = counter.count(text)
    rng = random.Random(len(text))
    for limit in (1, 7, total // 3, total // 2, total - 1, total, total + 5):
        for _ in range(4):
            cap, plain, i, cut = TokenCap(limit, counter), WholeTextCap(limit, counter), 0, False
            while i < len(text) and not cut:
                j = i + rng.choice((1, 2, 3, 5, 8, 13))
                got, cut = cap.feed(text[i:j])
                assert (got, cut) == plain.feed(text[i:j]), (limit, i)
                i = j
            assert cut == (total > limit)


def test_token_cap_counts_only_a_tail_near_the_limit():
    counter, text = load_counter(), CAP_TEXTS[0]
    cap = TokenCap(counter.count(text) - 1, counter)
    words = text.split(" ")
    assert all(not cap.feed(w + " ")[1] for w in words[:-8])
    assert cap.stable > len(text) // 2      # where the next exact count starts


def test_token_cap_holds_where_pieces_count_fewer_than_their_join():
    counter = load_counter()
    assert counter.count("'a") + counter.count("rell") < counter.count("'arell")
    cap, plain, out = TokenCap(100, counter), WholeTextCap(100, counter), []
    for i in range(1000):
        piece = ("'a", "rell")[i % 2]
        got, cut = cap.feed(piece)
        assert (got, cut) == plain.feed(piece)
        out.append(got)
        if cut:
            break
    assert cut and counter.count("".join(out)) == 100


def test_a_reply_ending_in_tool_calls_gets_no_sources_list():
    from kimi.canonical.events import FinishReason
    from kimi.canonical.shaping import AnswerShaper
    for reason, listed in ((FinishReason.STOP, True), (FinishReason.TOOL_CALLS, False)):
        shaper = AnswerShaper(ShapeOptions())
        for s in SOURCES:
            shaper.source(s)
        out = shaper.text("Checking." + E3A0.format("web_search:1#0"))
        out += shaper.finish(Finish(reason))
        text = "".join(e.text for e in out if type(e) is TextDelta)
        assert ("**Sources**" in text) is listed, reason
        assert text.startswith("Checking.[1]")
