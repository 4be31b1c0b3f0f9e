"""ConnectFrameDecoder must give the same frames whatever the read boundaries."""

import random

import orjson
import pytest

from kimi.errors import UpstreamError
from kimi.upstream.framing import ConnectFrameDecoder, encode_frame

MESSAGES = [{"heartbeat": {}},
            {"op": "set", "mask": "block.text", "block": {"id": "1", "text": {"content": "h\u00e9 \u4e2d\U0001F389"}}},
            {"op": "append", "mask": "block.text.content", "block": {"id": "1", "text": {"content": "\U0001F389\u00e9"}}},
            {"done": {}}]


def stream_bytes():
    end = b"\x02" + (2).to_bytes(4, "big") + b"{}"
    return b"".join(encode_frame(m) for m in MESSAGES) + end


def decode_in_pieces(data: bytes, cuts: list[int]):
    dec = ConnectFrameDecoder()
    out, last = [], 0
    for cut in cuts + [len(data)]:
        out += dec.feed(data[last:cut])
        last = cut
    assert dec.pending == 0
    return [(flags, orjson.loads(p)) for flags, p in out]


EXPECTED = [(0, m) for m in MESSAGES] + [(2, {})]


def test_every_single_split_point():
    data = stream_bytes()
    for cut in range(len(data) + 1):
        assert decode_in_pieces(data, [cut]) == EXPECTED, cut


def test_every_pair_of_split_points():
    data = stream_bytes()
    for a in range(0, len(data), 3):
        for b in range(a, len(data), 5):
            assert decode_in_pieces(data, [a, b]) == EXPECTED


def test_byte_by_byte_and_all_at_once():
    data = stream_bytes()
    assert decode_in_pieces(data, list(range(1, len(data)))) == EXPECTED
    assert decode_in_pieces(data, []) == EXPECTED


def test_random_splits_of_a_frame_of_several_megabytes():
    text = ("abc \u00e9\u4e2d\U0001F389 " * 400_000)
    data = encode_frame({"block": {"text": {"content": text}}}) + encode_frame({"done": {}})
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(data)), 300))
    frames = decode_in_pieces(data, cuts)
    assert frames[0][1]["block"]["text"]["content"] == text
    assert frames[1] == (0, {"done": {}})


def test_oversized_length_is_refused():
    dec = ConnectFrameDecoder()
    with pytest.raises(UpstreamError):
        dec.feed(b"\x00\xff\xff\xff\xff{}")
