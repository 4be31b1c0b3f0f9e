"""Kimi file upload and parse progress (protocol reference, section 4.8)."""

from __future__ import annotations

import asyncio
import time
from typing import IO

import aiohttp
import orjson
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import BufferedReaderPayload, Payload

from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .client import KimiClient, http_error
from .fields import field

UPLOAD_PATH = "/apiv2-files/file/upload"
PARSE_PATH = "/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress"
# Kimi: status arrives as the enum name or its number (3 = success, 4 = failure).
SUCCESS = {"PROCESS_STATUS_SUCCESS", 3}
FAILED = {"PROCESS_STATUS_FAILED", "PROCESS_STATUS_FAIL", 4}
FIRST_POLL, MAX_POLL, POLL_GROWTH = 0.2, 2.0, 1.5
SLICE = 256 * 1024


class MemoryPayload(Payload):
    """Bytes already in memory, written in slices of a memoryview: nothing is copied but the
    slice the transport may buffer (aiohttp's BytesIOPayload copies the whole buffer, its
    BytesPayload hands the transport everything at once)."""

    def __init__(self, value: bytes, **kwargs):
        super().__init__(value, **kwargs)
        self._size = len(value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._value.decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter,
                                content_length: int | None) -> None:
        view = memoryview(self._value)[:content_length]
        for start in range(0, len(view), SLICE):
            await writer.write(view[start:start + SLICE])


class ParseTimedOut(Exception):
    def __init__(self, file_ids: list[str]):
        super().__init__(*file_ids)
        self.file_ids = file_ids


class FileUploader:
    def __init__(self, client: KimiClient, upload_timeout: float, parse_timeout: float):
        self.client = client
        self.parse_timeout = parse_timeout
        self._timeout = aiohttp.ClientTimeout(total=upload_timeout)

    async def upload(self, session: aiohttp.ClientSession, token: str, filename: str,
                     mime: str, body: bytes | IO[bytes]) -> str:
        """Multipart upload of one file, streamed from memory or a file; returns its id."""
        payload_cls = MemoryPayload if isinstance(body, bytes) else BufferedReaderPayload
        form = aiohttp.MultipartWriter("form-data")
        part = form.append_payload(payload_cls(body, content_type=mime))
        # Raw UTF-8 as browsers send it; aiohttp's default would percent-encode "中文.pdf".
        part.set_content_disposition("form-data", quote_fields=False, name="file",
                                     filename=safe_filename(filename))
        headers = self.client.headers(token, "multipart/form-data")
        del headers["Content-Type"]     # aiohttp writes it with the boundary
        try:
            async with session.post(self.client.base_url + UPLOAD_PATH, data=form,
                                    headers=headers, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise await http_error(resp)
                answer = orjson.loads(await resp.read())
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout("Kimi did not accept the upload in time",
                                  code="upstream_upload_timeout", retryable=True) from None
        except aiohttp.ClientError as e:
            raise UpstreamUnavailable(f"cannot reach Kimi to upload: {type(e).__name__}",
                                      code="upstream_unreachable", retryable=True) from None
        except orjson.JSONDecodeError:
            raise UpstreamError("Kimi answered the upload with something that is not JSON",
                                code="upstream_bad_upload") from None
        file_id = (answer.get("file") or {}).get("id") if isinstance(answer, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise UpstreamError("Kimi's upload answer has no file id", code="upstream_bad_upload")
        return file_id

    async def statuses(self, session, token: str, file_ids: list[str]) -> dict[str, object]:
        answer = await self.client.unary(session, token, PARSE_PATH, {"file_ids": file_ids})
        out = {}
        for p in answer.get("progresses") or ():
            if isinstance(p, dict):
                out[str(field(p, "fileId", ""))] = p.get("status")
        return out

    async def wait_parsed(self, session, token: str, file_ids: list[str],
                          on_ready=None) -> list[str]:
        """Polls until every file is parsed or failed (the first poll is quick, later ones
        back off) and returns the failed ids; `on_ready(id)` runs for each success.
        Raises ParseTimedOut, naming the files still pending, past the parse timeout."""
        pending, failed, delay = list(file_ids), [], 0.0
        deadline = time.monotonic() + self.parse_timeout
        while pending:
            if delay:
                if time.monotonic() + delay > deadline:
                    raise ParseTimedOut(pending)
                await asyncio.sleep(delay)
            statuses = await self.statuses(session, token, pending)
            for fid in list(pending):
                status = statuses.get(fid)
                if status in FAILED or status in SUCCESS:
                    pending.remove(fid)
                if status in FAILED:
                    failed.append(fid)
                elif status in SUCCESS and on_ready is not None:
                    await on_ready(fid)
            delay = min(MAX_POLL, delay * POLL_GROWTH) if delay else FIRST_POLL
        return failed


def safe_filename(name: str) -> str:
    """A name fit for a quoted header value: no path, control characters, quotes or
    backslashes, at most 200 characters (the extension kept)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c >= " " and c != "\x7f").replace('"', "'").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot and len(ext) < 10 else name[:200]
    return name or "file"
