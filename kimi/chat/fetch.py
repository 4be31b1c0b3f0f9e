"""Attachment content: inline bytes as they are, remote URLs downloaded safely.

A download follows redirects itself (every hop is checked by the address policy), counts
bytes as they arrive and stops at the size cap, and spools to an unlinked temporary file
while hashing, so a large document never sits in memory and nothing is left on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import posixpath
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import IO

import aiohttp
from yarl import URL

from ..canonical.request import Attachment
from ..errors import InvalidRequest, PayloadTooLarge
from .addresses import AddressPolicy, RefusedAddress, VettingResolver

MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}
FLUSH_BYTES = 1 << 20
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"))


@dataclass
class Blob:
    """One attachment's content, ready to upload any number of times."""
    where: str
    kind: str
    filename: str
    mime: str
    size: int
    sha256: str
    data: bytes | None = None
    file: IO[bytes] | None = None

    def content(self) -> bytes | IO[bytes]:
        """The bytes, or a new handle on the (already unlinked) file: aiohttp closes the
        handle it uploads, and a failover uploads the same blob again on another account."""
        if self.data is not None:
            return self.data
        self.file.flush()       # the new handle reads the file, not this one's buffer
        handle = os.fdopen(os.dup(self.file.fileno()), "rb")
        handle.seek(0)
        return handle

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


async def inline_blob(a: Attachment) -> Blob:
    filename = a.filename or default_filename(a.kind, a.mime)
    if not isinstance(a.data, bytes):   # an InlinePayload: decoded and hashed as it was read
        return Blob(where=a.where, kind=a.kind, filename=filename,
                    mime=a.mime or "application/octet-stream", size=a.data.size,
                    sha256=a.data.sha256, data=a.data.data, file=a.data.reopen())
    # hashlib releases the GIL on large buffers, so a big document does not stall the loop.
    digest = await asyncio.to_thread(lambda: hashlib.sha256(a.data).hexdigest())
    return Blob(where=a.where, kind=a.kind, filename=filename,
                mime=a.mime or "application/octet-stream", size=len(a.data), sha256=digest,
                data=a.data)


class RemoteFetcher:
    def __init__(self, policy: AddressPolicy, max_bytes: int, timeout: float):
        self.policy = policy
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=VettingResolver(self.policy), limit=32)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(self, a: Attachment) -> Blob:
        host = urllib.parse.urlsplit(a.url).hostname or "?"
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(a, host)
        except TimeoutError:
            raise InvalidRequest(f"{a.where}: downloading from {host} took longer than "
                                 f"{self.timeout:g}s", param=a.where,
                                 code="file_download_timeout") from None

    async def _follow(self, a: Attachment, host: str) -> Blob:
        url = URL(a.url)
        for _ in range(MAX_REDIRECTS + 1):
            if url.scheme not in ("http", "https") or not url.host:
                raise InvalidRequest(f"{a.where}: redirected to a URL that is not http(s)",
                                     param=a.where, code="unsupported_url_scheme")
            try:
                self.policy.check_host(url.host)
                async with self._client().get(url, allow_redirects=False,
                                              headers={"Accept": "*/*"}) as resp:
                    if resp.status in REDIRECTS and resp.headers.get("Location"):
                        url = resp.url.join(URL(resp.headers["Location"]))
                        continue
                    if resp.status != 200:
                        raise _unreachable(a, url.host, f"it answered HTTP {resp.status}")
                    return await self._save(a, resp)
            except RefusedAddress as e:
                raise _refused(a, e) from None
            except aiohttp.ClientConnectorError as e:
                if isinstance(e.os_error, RefusedAddress):
                    raise _refused(a, e.os_error) from None
                raise _unreachable(a, url.host, "cannot connect") from None
            except (aiohttp.ClientError, ValueError) as e:
                raise _unreachable(a, url.host, type(e).__name__) from None
        raise InvalidRequest(f"{a.where}: more than {MAX_REDIRECTS} redirects from {host}",
                             param=a.where, code="file_too_many_redirects")

    async def _save(self, a: Attachment, resp: aiohttp.ClientResponse) -> Blob:
        if resp.content_length is not None and resp.content_length > self.max_bytes:
            raise self._too_large(a)
        sink = tempfile.TemporaryFile()     # unlinked already: nothing survives a crash
        try:
            size, digest, head = await self._spool(a, resp, sink)
        except BaseException:
            sink.close()
            raise
        if size == 0:
            sink.close()
            raise InvalidRequest(f"{a.where}: the downloaded file is empty", param=a.where,
                                 code="empty_file")
        filename = a.filename or _remote_filename(resp)
        mime = _remote_mime(resp, filename, head)
        if a.kind == "image" and not mime.startswith("image/"):
            sink.close()
            raise InvalidRequest(f"{a.where}: the URL does not hold an image ({mime})",
                                 param=a.where, code="unsupported_file_type")
        return Blob(where=a.where, kind=a.kind, filename=filename or default_filename(a.kind, mime),
                    mime=mime, size=size, sha256=digest, file=sink)

    async def _spool(self, a: Attachment, resp, sink) -> tuple[int, str, bytes]:
        sha, size, head, buf = hashlib.sha256(), 0, b"", bytearray()
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large(a)
            head = head or bytes(chunk[:16])
            buf += chunk
            if len(buf) >= FLUSH_BYTES:
                await asyncio.to_thread(_absorb, sink, sha, buf)
                buf = bytearray()
        if buf:
            await asyncio.to_thread(_absorb, sink, sha, buf)
        return size, sha.hexdigest(), head

    def _too_large(self, a: Attachment) -> PayloadTooLarge:
        return too_large(a, self.max_bytes)


def _absorb(sink: IO[bytes], sha, data: bytearray) -> None:
    sha.update(data)
    sink.write(data)


def _refused(a: Attachment, e: OSError) -> InvalidRequest:
    return InvalidRequest(f"{a.where}: refusing to fetch the URL: {e}", param=a.where,
                          code="file_url_refused")


def _unreachable(a: Attachment, host: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"{a.where}: could not download from {host}: {why}", param=a.where,
                          code="file_unreachable")


def _remote_filename(resp: aiohttp.ClientResponse) -> str | None:
    disposition = resp.content_disposition
    if disposition is not None and disposition.filename:
        return posixpath.basename(disposition.filename)
    name = posixpath.basename(urllib.parse.unquote(resp.url.path))
    return name or None


def _remote_mime(resp: aiohttp.ClientResponse, filename: str | None, head: bytes) -> str:
    mime = (resp.content_type or "").lower()
    if mime and mime not in ("application/octet-stream", "binary/octet-stream"):
        return mime
    for magic, sniffed in IMAGE_MAGIC:
        if head.startswith(magic):
            return sniffed
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    return guessed or "application/octet-stream"


def default_filename(kind: str, mime: str | None) -> str:
    ext = mimetypes.guess_extension(mime or "") or (".png" if kind == "image" else ".bin")
    return ("image" if kind == "image" else "file") + ext


def too_large(a: Attachment, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{a.where}: the file is larger than {max_bytes // (1024 * 1024)} MB",
                           param=a.where, code="file_too_large")
