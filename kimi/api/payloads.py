"""Base64 content in a request body, decoded for an attachment: shared by the dialects (a
data URL's payload, OpenAI's raw file_data, Anthropic's base64 sources)."""

from __future__ import annotations

import binascii
import io
import re

from ..errors import InvalidRequest

_WHITESPACE = re.compile(rb"\s+")
SLICE_CHARS = 4 * 1024 * 1024   # a multiple of 4: every slice but the last has no padding


def decode_base64(text: str, field: str, start: int = 0) -> bytes:
    """Strict standard base64 from text[start:]; line breaks and missing padding are
    forgiven, nothing else."""
    try:
        return _decode_in_slices(text, start)
    except (binascii.Error, ValueError):
        pass
    # The slow path copies the text, so only a malformed or wrapped payload pays for it.
    raw = _WHITESPACE.sub(b"", text[start:].encode("ascii", "replace"))
    raw += b"=" * (-len(raw) % 4 if len(raw) % 4 != 1 else 0)
    try:
        return binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{field} is not valid base64", param=field,
                             code="invalid_base64") from None


def _decode_in_slices(text: str, start: int) -> bytes:
    """Slicing a str copies it, so a document is decoded a few MB at a time into one buffer
    whose getvalue() hands over its bytes without a final copy: peak memory is the text plus
    the result, not twice the text."""
    if len(text) - start <= SLICE_CHARS:
        return binascii.a2b_base64(text[start:] if start else text, strict_mode=True)
    out = io.BytesIO()
    for i in range(start, len(text), SLICE_CHARS):
        out.write(binascii.a2b_base64(text[i:i + SLICE_CHARS], strict_mode=True))
    return out.getvalue()
