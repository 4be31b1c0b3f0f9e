"""Token counts for `usage`: OpenAI's o200k_base BPE, shipped in this package.

No download at run time: the merge table is `o200k_base.tiktoken.gz` next to this file, the
exact file OpenAI publishes for tiktoken (its SHA-256 is checked at load, the same hash
tiktoken's own registry pins). Kimi's own tokenizer is not published in a form we can ship,
so counts are estimates; o200k_base is a modern 200k-entry vocabulary that splits Chinese
and code much like Kimi's 160k one does.

To replace the file: take the `o200k_base.tiktoken` that tiktoken's registry fetches for this
encoding, `gzip -9 -n` it, and check that its SHA-256 before compression is O200K_SHA256.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from importlib import resources

import tiktoken

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


class TokenCounter:
    """Counts tokens. Thread-safe: tiktoken's encoder holds no per-call state."""

    def __init__(self, encoding: tiktoken.Encoding):
        self._enc = encoding

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text)) if text else 0

    def head(self, text: str, tokens: int) -> str:
        """The longest prefix of `text` that is at most `tokens` tokens (whole characters)."""
        ids = self._enc.encode_ordinary(text)
        if len(ids) <= tokens:
            return text
        return self._enc.decode_bytes(ids[:max(0, tokens)]).decode("utf-8", errors="ignore")

    def usage(self, prompt_texts: list[str], text: str, reasoning: str) -> dict:
        prompt = sum(self.count(t) + PER_MESSAGE for t in prompt_texts) + PER_MESSAGE
        answer, thought = self.count(text), self.count(reasoning)
        completion = answer + thought
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": thought}}


@functools.cache
def load_counter() -> TokenCounter:
    """Loads the encoding once per process (about 0.3 s; it is immutable afterwards, so one
    shared copy is a constant rather than state)."""
    data = gzip.decompress(resources.files(__package__).joinpath("o200k_base.tiktoken.gz").read_bytes())
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise RuntimeError("kimi/usage/o200k_base.tiktoken.gz is damaged (SHA-256 mismatch)")
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in data.splitlines() if line)}
    enc = tiktoken.Encoding("o200k_base", pat_str=O200K_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018})
    # The Rust core keeps its own copy of the table; the Python one (about 30 MB) is only read
    # by tiktoken for pickling and token_byte_values(), which the gateway never calls.
    enc._mergeable_ranks = {}
    del ranks
    return TokenCounter(enc)
