"""kimi.usage against tiktoken, its reference: the same shipped o200k_base table must give the
same tokens, counts and heads. tiktoken is a test-only dependency; the gateway never imports it.

The one known difference is left out of the fuzz: characters this Python's unicodedata does
not know yet (Unicode 15 and later, category Cn here) are letters or digits to tiktoken's
newer Unicode tables and punctuation here.
"""

import base64
import gzip
import random
import re
import unicodedata
from pathlib import Path

import pytest
import tiktoken

import kimi.usage
from kimi.usage import O200K_PATTERN, TokenCounter, load_counter

TABLE = Path(kimi.usage.__file__).with_name("o200k_base.tiktoken.gz")


@pytest.fixture(scope="module")
def reference() -> tiktoken.Encoding:
    data = gzip.decompress(TABLE.read_bytes())
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding("o200k_base", pat_str=O200K_PATTERN, mergeable_ranks=ranks,
                             special_tokens={})


def reference_head(enc: tiktoken.Encoding, text: str, tokens: int) -> str:
    """What `head` gave when it was built on tiktoken."""
    ids = enc.encode_ordinary(text)
    if len(ids) <= tokens:
        return text
    return enc.decode_bytes(ids[:max(0, tokens)]).decode("utf-8", errors="ignore")


CASES = {
    "empty": "",
    "English": "The quick brown fox jumps over the lazy dog. It's 5 o'clock somewhere!",
    "contractions": "we'll see what's what; you'd've thought i'm right, they're sure we've it",
    "contractions, upper case": "I'M SURE THEY'LL COME, IT'S TRUE, WE'VE SEEN, YOU'D, DON'T 'S 'LL",
    "contraction-like": "rock'n'roll o'clock 'tis the 'ssss x'st \u017f's",
    "Chinese, one long run": "我们今天讨论的是人工智能在教育领域中的应用以及它对未来社会可能产生的深远影响" * 5,
    "Chinese prose": "城市的清晨总是从一杯热豆浆开始。街角的小店六点就开门了，老板一边炸油条，一边聊天。",
    "Japanese": "東京の天気は晴れです。明日は雨が降るかもしれませんので、傘を持って行ってください。カタカナ",
    "Korean": "안녕하세요. 오늘 날씨가 정말 좋네요! 한국어 토큰화 테스트입니다. ㅋㅋㅋ",
    "Python": "def f(x: int) -> int:\n    return x ** 2  # square\n\nfor i in range(10):\n"
              "\tprint(f'{i}: {f(i)}')\n",
    "JSON": '{"key": [1, 2.5, -3e10], "nested": {"a": null, "b": true, "c": "\\u00e9"}}',
    "paths and URLs": "https://example.com/a/b.txt?q=1&r=2 C:\\Windows\\System32 /usr/bin/ ../x//y",
    "emoji": "I love \U0001f355 and \U0001f389\U0001f389\U0001f389! \U0001f600\U0001f603\U0001f604",
    "ZWJ sequences": "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, "
                     "\U0001f3f3\ufe0f\u200d\U0001f308 flag, \U0001f44d\U0001f3fd, "
                     "\U0001f9d1\U0001f3ff\u200d\U0001f4bb",
    "numbers": "1 12 123 1234 12345 123456789012345678901234567890 3.14159 1,000,000 "
               "\u0661\u0662\u0663\u0664",
    "whitespace runs": "a  b   c\r\n\r\n  d\t\te\n\n\n   \n f   \r\r\n\n  ",
    "tabs": "\t\t\tindented\n\t\t\t\n\tx\t",
    "\\x1c-\\x1f": "a\x1cb\x1dc\x1e d\x1f e \x1c\x1c\n\x1f \x1e's \x1d'D \u3000 \x1d",
    "\\x85, \\xa0, \\u3000 and others": "a\x85b\xa0c\u3000d \u3000\u3000e\u2028f\u2029"
                                      "g\u2003\u205f\u1680",
    "combining marks": "e\u0301 cafe\u0301 n\u0303 \u0301\u0301 a\u0308\u0304 Z\u0351\u0352 "
                       "\u0915\u093f",
    "mixed scripts": "Hello世界Привет мир مرحبا بالعالم שלום नमस्ते दुनिया สวัสดีชาวโลก ǅemal ʰa",
    "punctuation": "...!!! ??? --- /// ''' \"\"\" ((( ))) <<<>>> @#$%^&* \u3002\uff01\u2014\u2026",
    "above the BMP": "\U0001d400\U0001d401 \U0001d4d7\U0001d4ee\U0001d4f5'll \U00020000\U00020001 "
                     "\U0001d7d8\U0001d7d9\U0001d7da\U0001d7db \U00010400\U00010428",
    "one long piece": "a" * 3000,
    "newlines": "\n" * 50 + " \n \n" + "\r\n" * 10,
    "lone surrogates": "a\ud800b \udfff \ud83d\ude00",
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_tokens_counts_and_heads_equal_tiktokens(reference, text):
    counter = load_counter()
    ids = reference.encode_ordinary(text)
    assert counter.encode(text) == ids
    assert counter.count(text) == len(ids)
    for tokens in sorted({0, 1, 2, 3, len(ids) // 2, len(ids) - 1, len(ids), len(ids) + 1}):
        assert counter.head(text, tokens) == reference_head(reference, text, tokens), tokens


def alphabets() -> list:
    """Ways to draw one character (or a short run), for the fuzz."""
    def points(*ranges):
        chars = "".join(chr(c) for low, high in ranges for c in range(low, high + 1))
        return lambda rnd: rnd.choice(chars)
    def assigned(low, high):     # a random code point this Python's unicodedata knows
        def draw(rnd):
            while unicodedata.category(c := chr(rnd.randrange(low, high))) in ("Cn", "Cs"):
                pass
            return c
        return draw
    return [
        lambda rnd: rnd.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
        lambda rnd: rnd.choice(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
        lambda rnd: rnd.choice(["'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'LL", "'d", "'D"]),
        lambda rnd: rnd.choice([" ", "  ", "\n", "\r\n", "\t", "\x0b\x0c", "\x1c", "\x1d", "\x1e",
                                "\x1f", "\x85", "\xa0", "\u2000", "\u2028", "\u3000", " \n "]),
        points((0x4E00, 0x9FFF)), points((0x3040, 0x30FF)), points((0xAC00, 0xD7A3)),
        points((0x0300, 0x036F)), points((0x0600, 0x06FF), (0x0900, 0x097F), (0x0400, 0x04FF)),
        points((0x3000, 0x303F), (0xFF00, 0xFFEF)),
        points((0x1F300, 0x1FAFF)), lambda rnd: rnd.choice(["\u200d", "\ufe0f", "\U0001f3fb"]),
        lambda rnd: rnd.choice("0123456789") * rnd.randint(1, 8),
        assigned(0, 0x10000), assigned(0x10000, 0x110000),
    ]


def fuzz_texts(seed: int, n: int) -> list[str]:
    rnd, draw = random.Random(seed), alphabets()
    texts = []
    for _ in range(n):
        weights = [rnd.random() for _ in draw]     # each text its own mix
        texts.append("".join(rnd.choices(draw, weights)[0](rnd) for _ in range(rnd.randint(0, 40))))
    return texts


def test_random_texts_encode_as_tiktoken_does(reference):
    counter = load_counter()
    texts = fuzz_texts(seed=20260101, n=3000)
    wrong = [t for t in texts if counter.encode(t) != reference.encode_ordinary(t)]
    assert wrong == []
    rnd = random.Random(7)
    heads = [(t, k) for t in texts[:500] for k in [rnd.randint(0, 12)]]
    assert [h for h in heads if counter.head(*h) != reference_head(reference, *h)] == []


def test_the_fuzz_covers_what_it_claims():
    text = "".join(fuzz_texts(seed=20260101, n=3000))
    categories = {unicodedata.category(c) for c in text}
    assert {"Lo", "Lu", "Ll", "Mn", "Nd", "So", "Zs", "Cc", "Po"} <= categories
    assert sum(c > "\uffff" for c in text) > 1000 and "\x1c" in text and "\u200d" in text


def test_the_table_is_compact():
    counter = load_counter()
    assert len(counter) == 199998
    assert counter.encode("hello world") == [24912, 2375]
    held = [counter._blob, counter._offsets, counter._slots, counter._pairs, counter._bytes]
    assert sum(len(a) * getattr(a, "itemsize", 1) for a in held) < 4.5 * 2**20
    caches = (counter._memo, counter._single)     # bounded caches, not the table
    assert not [v for v in vars(counter).values() if isinstance(v, (dict, list, set))
                and len(v) > 100 and not any(v is c for c in caches)]


def test_single_token_pieces_are_remembered_within_bounds(monkeypatch):
    counter = load_counter()
    monkeypatch.setattr("kimi.usage.SINGLE_ENTRIES", 8)
    # The counter is shared by the whole run: start from an empty memo, whatever the tests
    # before this one counted.
    monkeypatch.setattr(counter, "_single", set())
    text = "the quick brown fox jumps over the lazy dog again and again, said the fox"
    assert counter.count(text) == len(counter.encode(text))
    assert counter.count(text) == len(counter.encode(text))      # now from the memo
    assert 0 < len(counter._single) <= 8
    assert all(len(counter.encode(p.decode())) == 1 for p in counter._single)


@pytest.mark.parametrize("lines,error", [
    ([b"YQ== 0", b"Yg== 2"], "ranks are not 0..N-1 in order (line 2)"),
    ([b"YQ== 1"], "ranks are not 0..N-1 in order (line 1)"),
    ([b"Yg== 0", b"YQ== 1", b"Yg== 2"], "has token 2 twice"),
    ([b"YQ== 0", b"YQ=="], "line 2 of the token table is not 'token rank'"),
    ([b"Y*== 0"], "line 1 of the token table is not 'token rank'"),
])
def test_a_bad_table_is_refused(lines, error):
    with pytest.raises(RuntimeError, match=re.escape(error)):
        TokenCounter(lines)


def test_a_tiny_table_merges_lowest_rank_first_and_leftmost_on_ties():
    counter = TokenCounter([base64.b64encode(t) + b" %d" % r for r, t in
                            enumerate([b"a", b"b", b"ab", b"ba", b"bab", b"aa"])])
    assert counter.encode("abab") == [2, 2]         # ab before ba (lower rank)
    assert counter.encode("bab") == [4]             # the whole piece is a token
    assert counter.encode("baba") == [4, 0]         # ab first, then b + ab; bab + a is none
    assert counter.encode("aaa") == [5, 0]          # a tie: the leftmost pair first
    assert counter.count("baba") == 2 and counter.head("abab", 1) == "ab"


def test_long_texts_are_counted_once_and_the_memo_stays_bounded(monkeypatch):
    counter = load_counter()
    monkeypatch.setattr(counter, "_memo", {})
    monkeypatch.setattr(kimi.usage, "MEMO_ENTRIES", 4)
    history = "A long turn of a conversation, sent again with every turn. " * 40
    assert counter.count_long(history) == counter.count(history)
    assert list(counter._memo.values()) == [counter.count(history)]
    calls = []
    monkeypatch.setattr(counter, "count", lambda t: calls.append(t) or 0)
    counter.count_long(history)
    assert calls == []                          # remembered: not counted again
    counter.count_long("short")
    assert calls == ["short"]                   # short texts are not worth a digest
    for i in range(10):
        counter.count_long(history + str(i))
    assert 1 <= len(counter._memo) <= 4
