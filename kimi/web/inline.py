"""Large base64 data URLs taken out of a JSON body while it is read.

Parsed whole, a body carrying a document holds its base64 text (1.33x the document), the
parsed string and the decoded bytes at once. Instead the body streams through BodyScanner:
an object member's value longer than INLINE_MIN that starts with "data:" and declares
";base64," (or any value of a raw-base64 member: OpenAI's "file_data", Anthropic's "data",
as the reading dialect names them) is decoded piece
by piece into an InlinePayload (in memory, past SPILL bytes in an unlinked temporary file,
hashed on the way) and replaced in the JSON text by a marker that carries a random
per-request nonce, so no client string can pass for one. The text parsed is then small.
Everything else (text between strings, and strings that cannot matter) is copied in C-speed
runs, so a large body of ordinary JSON costs little to scan.

Only the plain form is taken: base64 characters and the JSON escape \\/. Anything else inside
such a value (another escape, whitespace, a stray character or padding, missing padding, an
unterminated string) turns it back into exactly the text it was, so the usual decoder sees
what the client sent and answers as it always did (that path costs the old memory).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import os
import re
import secrets
import tempfile
from typing import IO, Iterator

from ..errors import PayloadTooLarge

INLINE_MIN = 64 * 1024      # shorter data URLs stay in the JSON text
SPILL = 1 << 20             # decoded content past this goes to a temporary file
MAX_HEADER = 1024           # as the attachment decoder: "data:<type>;<params>;base64," is short
ENCODE_SLICE = 3 << 18      # a multiple of 3: slices encode to base64 without padding
# A JSON string's content up to its closing quote (or a backslash ending the chunk), in C.
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
# Text outside strings and whole strings that cannot matter, skipped in C: it stops at a
# string that starts with "data:", at a raw-base64 key, and at a string the chunk cuts.
RAW_KEYS = (b"file_data",)


@functools.cache
def _plain(raw_keys: tuple[bytes, ...]) -> re.Pattern:
    stops = b"|".join([b"data:"] + [re.escape(k) + b'"' for k in raw_keys])
    return re.compile(rb'(?:[^"]++|"(?!' + stops + rb')(?:[^"\\]++|\\.)*+")*+', re.S)


_WHITESPACE = b" \t\r\n"
QUOTE, COLON, BACKSLASH = 0x22, 0x3A, 0x5C


class InlinePayload:
    """The decoded content of one data URL: `data` (small) or a temporary file."""

    def __init__(self, header: str, max_bytes: int):
        self.header = header        # "data:application/pdf;base64,", or "" for raw base64
        self.max_bytes = max_bytes
        self.size = 0               # counted on even past max_bytes, where storing stops
        self.sha256 = ""
        self.data: bytes | None = None
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._file: IO[bytes] | None = None

    def __len__(self) -> int:
        return self.size

    @property
    def too_large(self) -> bool:
        return self.size > self.max_bytes

    def write(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.too_large:
            self.close()            # it will be refused: keep nothing
            return
        self._hash.update(piece)
        if self._file is not None:
            self._file.write(piece)
            return
        self._buf += piece
        if len(self._buf) > SPILL:
            self._file = tempfile.TemporaryFile()   # unlinked already
            self._file.write(self._buf)
            self._buf = bytearray()

    def finish(self) -> None:
        self.sha256 = self._hash.hexdigest()
        if self._file is None and not self.too_large:
            self.data, self._buf = bytes(self._buf), bytearray()

    def reopen(self) -> IO[bytes] | None:
        """A new handle on the file (an upload closes the one it is given), or None when the
        content is in `data`."""
        if self._file is None:
            return None
        self._file.flush()
        handle = os.fdopen(os.dup(self._file.fileno()), "rb")
        handle.seek(0)
        return handle

    def encoded(self) -> Iterator[bytes]:
        """The base64 of what was written so far, in pieces."""
        if self._file is None:
            view = memoryview(self.data if self.data is not None else self._buf)
            for i in range(0, len(view), ENCODE_SLICE):
                yield binascii.b2a_base64(view[i:i + ENCODE_SLICE], newline=False)
            return
        self._file.seek(0)
        while piece := self._file.read(ENCODE_SLICE):
            yield binascii.b2a_base64(piece, newline=False)
        self._file.seek(0, os.SEEK_END)

    def text(self) -> str:
        """The data URL as the client sent it (base64 that was canonical, see BodyScanner)."""
        return self.header + b"".join(self.encoded()).decode("ascii")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.data, self._buf = None, bytearray()


class BodyScanner:
    """feed(chunk) any number of times, then finish(): `out` is the JSON text to parse and
    `payloads` maps each marker in it to its content."""

    def __init__(self, max_bytes: int, raw_keys: tuple[bytes, ...] = RAW_KEYS):
        self.out = bytearray()
        self.payloads: dict[str, InlinePayload] = {}
        self._max_bytes = max_bytes
        self._nonce = secrets.token_hex(16)
        self._state = self._outside
        self._last = 0              # the last byte outside strings that is not whitespace
        self._escaped = False       # inside a string: the next byte is escaped
        self._head = bytearray()    # the first bytes of a value that may be a data URL
        self._plain = _plain(raw_keys)
        self._keys = tuple(b'"' + k + b'"' for k in raw_keys)
        self._raw = False           # that value is a raw-base64 member's: taken too
        self._after_key = False     # the string being read may be a raw-base64 key
        self._payload: InlinePayload | None = None
        self._carry = bytearray()   # base64 characters not decoded yet (less than 4, or padding)

    def feed(self, chunk: bytes) -> None:
        pos = 0
        while pos < len(chunk):
            pos = self._state(chunk, pos)

    def finish(self) -> None:
        """The body ended (inside a string only when it is not valid JSON)."""
        if self._state == self._candidate:
            self.out += b'"' + self._head
        elif self._state == self._data and not self._payload.too_large:
            self._give_back()
        elif self._state in (self._data, self._skip):
            self.out += b'"'    # unterminated, as the body's was

    def take(self, container: dict, key) -> None:
        """Keeps the payload decoded where the caller expects an attachment."""
        value = container.get(key)
        if type(value) is str and value in self.payloads:
            container[key] = self.payloads[value]

    def restore(self, body) -> None:
        """Puts every marker not taken back as the text it replaced."""
        stack = [body]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if type(value) is str and value in self.payloads:
                    node[key] = self._text_of(self.payloads[value])
                elif isinstance(value, (dict, list)):
                    stack.append(value)

    def _text_of(self, payload: InlinePayload) -> str:
        if payload.too_large:   # its text is gone; it would have been refused as a file too
            raise PayloadTooLarge("a data URL in the request is larger than "
                                  f"{self._max_bytes // (1024 * 1024)} MB", code="file_too_large")
        text = payload.text()
        payload.close()
        return text

    def close(self) -> None:
        for payload in self.payloads.values():
            payload.close()
        if self._payload is not None:
            self._payload.close()

    # --- states: each consumes chunk from pos and returns where it stopped --------------

    def _outside(self, chunk: bytes, pos: int) -> int:
        if not self._after_key:     # the value of a raw-base64 key is read here, not skipped
            pos = self._copy_outside(chunk, pos, self._plain.match(chunk, pos).end())
        quote = chunk.find(b'"', pos)
        self._copy_outside(chunk, pos, len(chunk) if quote < 0 else quote)
        if quote < 0:
            return len(chunk)
        self._after_key = False
        if self._last == COLON:         # an object member's value: maybe a data URL
            self._state, self._head = self._candidate, bytearray()
            self._raw = any(self._member_is(key) for key in self._keys)
        else:
            self.out += b'"'
            self._state = self._text
            # A raw-base64 key, or the part of it this chunk holds.
            self._after_key = any(key.startswith(chunk[quote:quote + len(key)])
                                  for key in self._keys)
        return quote + 1

    def _copy_outside(self, chunk: bytes, pos: int, end: int) -> int:
        """Copies chunk[pos:end], which is outside strings or whole strings; returns end."""
        self.out += memoryview(chunk)[pos:end]
        i = end
        while i > pos and chunk[i - 1] in _WHITESPACE:
            i -= 1
        if i > pos:
            self._last = chunk[i - 1]
        return end

    def _member_is(self, key: bytes) -> bool:
        """Whether the member whose value starts here is named key (as the client wrote it;
        a false match only costs a value taken and given back)."""
        tail = self.out[-64:].rstrip(_WHITESPACE)     # "...key" :
        return tail[:-1].rstrip(_WHITESPACE).endswith(key)

    def _text(self, chunk: bytes, pos: int) -> int:
        end = self._string_end(chunk, pos)
        self.out += memoryview(chunk)[pos:len(chunk) if end < 0 else end]
        return len(chunk) if end < 0 else self._closed(end)

    def _candidate(self, chunk: bytes, pos: int) -> int:
        stop = min(len(chunk), pos + INLINE_MIN - len(self._head))
        end = self._string_end(chunk, pos, stop)
        self._head += memoryview(chunk)[pos:stop if end < 0 else end]
        if end >= 0 or not (self._raw or b"data:".startswith(self._head[:5])):
            self.out += b'"' + self._head
            self._head = bytearray()
            if end >= 0:
                return self._closed(end)
            self._state = self._text
        elif len(self._head) >= INLINE_MIN:
            self._commit()
        return stop

    def _commit(self) -> None:
        head, self._head = self._head, bytearray()
        if head.startswith(b"data:"):
            comma = head.find(b",", 0, 2 * MAX_HEADER)
            header = _base64_header(bytes(head[:comma])) if comma > 0 else None
        else:
            comma, header = -1, ""      # raw base64 (only a raw-base64 member gets here)
        if header is None:
            self.out += b'"' + head
            self._state = self._text
            return
        self._payload = InlinePayload(header, self._max_bytes)
        self._carry, self._state = bytearray(), self._data
        rest = bytes(head[comma + 1:])
        self._escaped = False       # the header ended with no escape open
        if not self._take(rest, ended=False):
            self._trouble()
            self._state(rest, 0)    # reads the rest as text (or drops it)

    def _data(self, chunk: bytes, pos: int) -> int:
        quote = chunk.find(b'"', pos)
        end = len(chunk) if quote < 0 else quote
        if not self._take(chunk[pos:end], ended=quote >= 0):
            self._trouble()
            return pos          # the state it switched to reads this part again
        if quote < 0:
            return end
        if not self._last_quantum() and not self._payload.too_large:
            self._give_back()
            return self._closed(quote)
        self._payload.finish()
        self._emit_marker()
        return self._closed(quote, quoted=True)

    def _skip(self, chunk: bytes, pos: int) -> int:
        """The rest of a value whose text is gone (past the size cap): dropped."""
        end = self._string_end(chunk, pos)
        if end < 0:
            return len(chunk)
        self._payload.finish()
        self._emit_marker()
        return self._closed(end, quoted=True)

    # --- helpers ------------------------------------------------------------------------

    def _string_end(self, chunk: bytes, pos: int, stop: int | None = None) -> int:
        """Index of the closing quote in chunk[pos:stop], or -1 (the string goes on)."""
        stop = len(chunk) if stop is None else stop
        start = pos
        if self._escaped:       # the last run ended with a backslash
            start, self._escaped = pos + 1, False
        end = _STRING_BODY.match(chunk, start, stop).end() if start < stop else stop
        if end < stop and chunk[end] == QUOTE:
            return end
        self._escaped = end < stop      # stopped at a backslash that is the last byte
        return -1

    def _closed(self, quote: int, quoted: bool = False) -> int:
        if not quoted:
            self.out += b'"'
        self._state, self._last = self._outside, QUOTE
        return quote + 1

    def _take(self, seg: bytes, ended: bool) -> bool:
        """Decodes a run of the value; False (nothing changed) if it is not plain base64."""
        data = b"\\" + seg if self._escaped else seg
        hold = not ended and data.endswith(b"\\")
        clean = (data[:-1] if hold else data).replace(b"\\/", b"/")
        if b"\\" in clean:
            return False
        carry = self._carry + clean
        whole = len(carry) // 4 * 4
        pad = carry.find(b"=", 0, whole)
        if pad >= 0:            # padding ends the value: decode up to its quantum only
            whole = pad // 4 * 4
        if len(carry) - whole > 4:
            return False
        if whole:
            try:
                piece = binascii.a2b_base64(carry[:whole], strict_mode=True)
            except binascii.Error:
                return False
            self._payload.write(piece)
        self._carry, self._escaped = carry[whole:], hold
        return True

    def _last_quantum(self) -> bool:
        """Decodes the padded last quantum; False for anything the decoder would have to
        forgive or refuse (missing padding, bits after the padding, junk)."""
        tail = bytes(self._carry)
        if not tail:
            return True
        if len(tail) != 4:
            return False
        try:
            piece = binascii.a2b_base64(tail, strict_mode=True)
        except binascii.Error:
            return False
        if binascii.b2a_base64(piece, newline=False) != tail:
            return False
        self._payload.write(piece)
        self._carry = bytearray()
        return True

    def _trouble(self) -> None:
        """Not plain base64: the value goes back to text, read on from the same place."""
        if self._payload.too_large:
            self._state = self._skip        # nothing to give back; it is refused later
            return
        self._give_back()
        self._state = self._text

    def _give_back(self) -> None:
        payload, self._payload = self._payload, None
        self.out += b'"' + payload.header.encode()
        for piece in payload.encoded():
            self.out += piece
        self.out += self._carry
        if self._escaped:
            self.out += b"\\"    # held back from the last run: it escapes what comes next
        self._carry = bytearray()
        payload.close()

    def _emit_marker(self) -> None:
        marker = f"kimi-inline-{self._nonce}-{len(self.payloads)}"
        self.payloads[marker] = self._payload
        self._payload, self._carry = None, bytearray()
        self.out += b'"' + marker.encode() + b'"'


def _base64_header(raw: bytes) -> str | None:
    """The header of a data URL (up to its comma) if it is plain and says base64."""
    if b"\\" in raw.replace(b"\\/", b""):
        return None
    try:
        text = raw.replace(b"\\/", b"/").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) >= MAX_HEADER or any(c < " " for c in text):
        return None
    if [p.strip() for p in text[5:].split(";")][-1].lower() != "base64":
        return None
    return text + ","
