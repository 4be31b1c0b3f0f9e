"""Token counts for `usage`: OpenAI's o200k_base BPE, shipped in this package.

No download at run time: the merge table is `o200k_base.tiktoken.gz` next to this file, the
exact file OpenAI publishes for tiktoken (its SHA-256 is checked at load, the same hash
tiktoken's own registry pins). Kimi's own tokenizer is not published in a form we can ship,
so counts are estimates; o200k_base is a modern 200k-entry vocabulary that splits Chinese
and code much like Kimi's 160k one does.

Why not tiktoken itself: its Rust core holds the table in hash maps, about 49 MB resident,
and it brings `requests`, `urllib3`, `certifi`, `charset-normalizer` and `regex` along. Here,
in plain Python, the table is one `bytes` blob of all tokens in rank order, an array of
offsets into it and an open-addressing hash table of ranks (4 MB together; loading adds about
5.5 MB resident in 0.3 s), the pre-tokenisation pattern runs on `re`, and the merges are
tiktoken's, in the same order. The tokens are those of tiktoken's `encode_ordinary` for
o200k_base (tests/test_usage.py compares the two), except around characters newer than this
Python's `unicodedata` (Unicode 15 and later for Python 3.11; about 9,500 rare letters, marks
and digits such as CJK extensions H and I), which are punctuation here and letters to tiktoken.
Encoding is about 3 MB/s of English or code and 1 MB/s of Chinese, a tenth to a thirtieth of
tiktoken's; the gateway counts once per answer.

To replace the file: take the `o200k_base.tiktoken` that tiktoken's registry fetches for this
encoding, `gzip -9 -n` it, and check that its SHA-256 before compression is O200K_SHA256.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import heapq
import itertools
import re
import threading
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from importlib import resources

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# tiktoken_ext/openai_public.py, o200k_base(): the pre-tokenisation pattern of this encoding.
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
# Chat formatting overhead per message (role markers), as OpenAI counts it for its chat models.
PER_MESSAGE = 3
# Unicode White_Space, which is what `\s` means in tiktoken's regex (Python's `\s` adds \x1c-\x1f).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_A_TOKEN = 0xFFFFFFFF   # above every rank
MEMO_CHARS, MEMO_ENTRIES = 200, 4096      # `count_long`: which texts, and how many
SINGLE_ENTRIES = 16384                    # `count`: single-token pieces remembered
ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def unicode_tables() -> tuple[dict[str, str], dict[str, str]]:
    """`re` class bodies for the `\\p{..}` names, as ranges of BMP code points by general
    category; and per category a BMP stand-in for the code points above it (see `_pieces`)."""
    runs: dict[str, list[list[int]]] = {}
    start = 0
    for category, group in itertools.groupby(map(unicodedata.category, map(chr, range(0x10000)))):
        end = start + sum(1 for _ in group)
        runs.setdefault(category, []).append([start, end - 1])
        start = end
    stand_ins = {category: next(chr(c) for a, b in ranges for c in range(a, b + 1)
                                if chr(c) not in "\r\n '/sStTrReEvVmMlLdD")
                 for category, ranges in runs.items()}
    classes = {"s": WHITE_SPACE}
    for name in ("L", "Lu", "Lt", "Lm", "Lo", "Ll", "M", "N"):
        merged: list[list[int]] = []
        for first, last in sorted(r for c in runs if c.startswith(name) for r in runs[c]):
            if merged and merged[-1][1] + 1 == first:
                merged[-1][1] = last
            else:
                merged.append([first, last])
        classes[name] = "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "")
                                for a, b in merged)
    return classes, stand_ins


def translate(pattern: str, classes: dict[str, str]) -> str:
    """The pattern with `\\p{..}`, `\\s` and `\\S` spelt out as explicit classes for `re`."""
    out, inside = [], False
    for token in re.findall(r"\\p\{\w+\}|\\.|.", pattern, re.S):
        if token in ("[", "]"):
            inside = token == "["
        elif token.startswith(r"\p") or token == r"\s":
            body = classes[token[3:-1] or "s"]
            token = body if inside else f"[{body}]"
        elif token == r"\S":
            token = f"[^{classes['s']}]"
        out.append(token)
    return "".join(out)


def valid(text: str) -> str:
    """`text` with lone surrogates replaced, as tiktoken does before encoding."""
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class TokenCounter:
    """Counts tokens. Thread-safe: the table does not change after construction, and the
    memo of `count_long` is only ever added to (or emptied) under a lock."""

    def __init__(self, lines: Iterable[bytes]):
        """`lines` of a .tiktoken file: a token in base64 and its rank, ranks 0..N-1 in order.
        What stays is one blob and three arrays; no object per token is kept, even while
        loading, so nothing is left behind in the allocator either."""
        blob, self._offsets = bytearray(), array("I", [0])
        self._bytes = array("I", [NOT_A_TOKEN]) * 256         # the ranks of one-byte tokens
        self._pairs = array("I", [NOT_A_TOKEN]) * 65536       # and of two-byte tokens
        for rank, line in enumerate(lines):
            try:
                token, number = line.split()
                token = base64.b64decode(token, validate=True)
            except ValueError:
                raise RuntimeError(f"line {rank + 1} of the token table is not 'token rank'") \
                    from None
            if number != b"%d" % rank:
                raise RuntimeError(f"the token table's ranks are not 0..N-1 in order "
                                   f"(line {rank + 1})")
            blob += token
            self._offsets.append(len(blob))
            if len(token) == 1:
                self._bytes[token[0]] = rank
            elif len(token) == 2:
                self._pairs[token[0] << 8 | token[1]] = rank
        self._blob = bytes(blob)
        del blob
        self._slots = array("i", [-1]) * (2 * len(self) + 1)   # a rank or -1; half empty
        for rank in range(len(self)):
            token = self._blob[self._offsets[rank]:self._offsets[rank + 1]]
            if self._rank(token) != NOT_A_TOKEN:
                raise RuntimeError(f"the token table has token {rank} twice")
            i = hash(token) % len(self._slots)
            while self._slots[i] >= 0:
                i = (i + 1) % len(self._slots)
            self._slots[i] = rank
        self._memo: dict[bytes, int] = {}
        self._single: set[bytes] = set()
        self._memo_lock = threading.Lock()
        classes, self._stand_ins = unicode_tables()
        self._split = re.compile(translate(O200K_PATTERN, classes)).finditer

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _rank(self, piece: bytes) -> int:
        """The rank of `piece`, or NOT_A_TOKEN."""
        slots, offsets, size = self._slots, self._offsets, len(self._slots)
        i = hash(piece) % size
        while (rank := slots[i]) >= 0:
            start = offsets[rank]
            if offsets[rank + 1] - start == len(piece) and self._blob.startswith(piece, start):
                return rank
            i = (i + 1) % size
        return NOT_A_TOKEN

    def _merge(self, piece: bytes) -> list[int]:
        """tiktoken's byte pair merge: from single bytes, join the adjacent pair that is the
        token of lowest rank (the leftmost on a tie) until no pair is a token. The candidates
        wait in a heap, as in tiktoken's `_byte_pair_merge_large`, so that a long piece costs
        n log n rather than n squared. Returns the ranks of the tokens."""
        rank, n = self._rank, len(piece)
        token = [self._bytes[b] for b in piece]     # token[i]: the part that starts at i
        end = list(range(1, n + 1))                 # end[i]: where that part ends
        prev = list(range(-1, n - 1))               # prev[i]: where the part before it starts
        pair = [self._pairs[a << 8 | b] for a, b in zip(piece, piece[1:])] + [NOT_A_TOKEN]
        heap = [r << 32 | i for i, r in enumerate(pair) if r != NOT_A_TOKEN]  # rank, then start
        heapq.heapify(heap)
        while heap:
            key = heapq.heappop(heap)
            i = key & 0xFFFFFFFF
            if pair[i] != key >> 32:
                continue                            # that pair has changed since
            token[i], right = pair[i], end[i]
            end[i] = after = end[right]
            pair[right] = NOT_A_TOKEN
            if after < n:
                prev[after] = i
            for start in (prev[i], i) if i else (i,):
                mid = end[start]
                pair[start] = r = rank(piece[start:end[mid]]) if mid < n else NOT_A_TOKEN
                if r != NOT_A_TOKEN:
                    heapq.heappush(heap, r << 32 | start)
        ranks, i = [], 0
        while i < n:
            ranks.append(token[i])
            i = end[i]
        return ranks

    def _pieces(self, text: str) -> Iterator[tuple[int, bytes]]:
        """The pre-tokenised pieces of `text`: where each ends (a character offset) and its
        UTF-8. `re` tests a character against a class in one step below U+10000 but range by
        range above, so the pattern's classes hold BMP code points only, and characters above
        the BMP are matched as a stand-in of their category (in a copy of the text of the same
        length; the pieces are cut from the text)."""
        text = valid(text)
        if not ASTRAL.search(text):
            return ((match.end(), match[0].encode()) for match in self._split(text))
        shadow = ASTRAL.sub(lambda m: self._stand_ins[unicodedata.category(m[0])], text)
        return ((m.end(), text[m.start():m.end()].encode()) for m in self._split(shadow))

    def _tokens(self, piece: bytes) -> list[int]:
        rank = self._rank(piece)
        return [rank] if rank != NOT_A_TOKEN else self._merge(piece)

    def encode(self, text: str) -> list[int]:
        """Token ranks, as tiktoken's `encode_ordinary` gives them."""
        out = []
        for _, piece in self._pieces(text):
            out += self._tokens(piece)
        return out

    def count(self, text: str) -> int:
        """`len(encode(text))`. Most pieces of a text are one token each, and a small set of the
        ones seen lately answers for them in one step (it holds vocabulary entries only, so no
        user text beyond single tokens; bounded, so it is only a cache)."""
        single, total = self._single, 0
        for _, piece in self._pieces(text):
            if piece in single:
                total += 1
                continue
            n = len(self._tokens(piece))
            if n == 1:
                if len(single) >= SINGLE_ENTRIES:
                    single.clear()
                single.add(piece)
            total += n
        return total

    def piece_counts(self, text: str) -> list[tuple[int, int]]:
        """(end, tokens) of each pre-tokenised piece: the count of `text` is their sum, and a
        prefix that ends where a piece ends counts as the pieces before."""
        return [(end, len(self._tokens(piece))) for end, piece in self._pieces(text)]

    def count_long(self, text: str) -> int:
        """`count`, remembered for all but short texts: a conversation's history comes back with
        every turn, and an answer returns as the next turn's prompt, so a turn counts only its
        new message and its answer. Keyed by a digest (a few hundred nanoseconds against 20 us
        or more for counting 200 characters), so the memo holds no text; bounded (about 0.5
        MB), so it is only a cache."""
        if len(text) < MEMO_CHARS:
            return self.count(text)
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        found = self._memo.get(key)
        if found is None:
            found = self.count(text)
            with self._memo_lock:
                if len(self._memo) >= MEMO_ENTRIES:
                    self._memo.clear()
                self._memo[key] = found
        return found

    def head(self, text: str, tokens: int) -> str:
        """The longest prefix of `text` that is at most `tokens` tokens (whole characters)."""
        ids = self.encode(text)
        if len(ids) <= tokens:
            return text
        size = sum(self._offsets[r + 1] - self._offsets[r] for r in ids[:max(0, tokens)])
        return valid(text).encode()[:size].decode("utf-8", errors="ignore")

    def prompt_tokens(self, prompt_texts: list[str]) -> int:
        return sum(self.count_long(t) + PER_MESSAGE for t in prompt_texts) + PER_MESSAGE

    def usage(self, prompt_texts: list[str], text: str, reasoning: str,
              prompt: int | None = None) -> dict:
        """Prompt, completion and reasoning tokens; `prompt`, when given, is the prompt's
        count taken earlier (`prompt_tokens`), and `prompt_texts` are not counted again."""
        if prompt is None:
            prompt = self.prompt_tokens(prompt_texts)
        answer, thought = self.count_long(text), self.count_long(reasoning)
        completion = answer + thought
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": thought}}


@functools.cache
def load_counter() -> TokenCounter:
    """Loads the table once per process (about 0.3 s; it is immutable afterwards, so one
    shared copy is a constant rather than state). The file is read twice, as a stream, so that
    no large transient buffer is left behind in the allocator."""
    path = resources.files(__package__).joinpath("o200k_base.tiktoken.gz")
    digest = hashlib.sha256()
    with path.open("rb") as raw, gzip.open(raw) as table:
        while chunk := table.read(1 << 16):
            digest.update(chunk)
    if digest.hexdigest() != O200K_SHA256:
        raise RuntimeError("kimi/usage/o200k_base.tiktoken.gz is damaged (SHA-256 mismatch)")
    with path.open("rb") as raw, gzip.open(raw) as table:
        return TokenCounter(table)
