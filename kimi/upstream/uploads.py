"""Files on Kimi: the file ids of a turn's attachments on the account that runs it.

Each Kimi user remembers what it uploaded (content sha256 -> file id), so a document resent
with every turn of a conversation is uploaded once; a remembered id Kimi no longer has is
uploaded again. Every upload runs to its end and is remembered once parsed, so a retry
uploads only what is missing.
"""

from __future__ import annotations

import asyncio
import hashlib

from ..errors import GatewayError, InvalidRequest, NotFound, UpstreamTimeout
from .files import SUCCESS, FileUploader, ParseTimedOut
from .tokens import jwt_claims


class FileUploads:
    def __init__(self, uploader: FileUploader, store, *, parallel: int = 4):
        self.uploader = uploader
        self.store = store          # store.uploads.UploadStore: sha256 -> file id per owner
        self.parallel = parallel

    async def file_ids(self, account, session, token: str, blobs) -> tuple[str, ...]:
        """Kimi file ids for `blobs` on this account (uploaded unless it already has them).
        A blob has `sha256`, `where`, `filename`, `mime` and `content()`."""
        if not blobs:
            return ()
        return await self._file_ids(upload_owner(account, token), session, token, blobs)

    async def _file_ids(self, owner: str, session, token: str,
                        blobs) -> tuple[str, ...]:
        known = await self.store.lookup(owner, [b.sha256 for b in blobs])
        if known:
            known = await self._still_there(owner, session, token, known)
        fresh = [b for b in blobs if b.sha256 not in known]
        # Every upload runs to its end even when another fails, and every finished one is
        # remembered once parsed: a retry then uploads only what is missing, and nothing
        # Kimi holds is unaccounted for.
        outcomes = await run_all([self._upload(session, token, b) for b in fresh],
                                 self.parallel, settle=True)
        for o in outcomes:
            if isinstance(o, BaseException) and not isinstance(o, GatewayError):
                raise o
        by_id = {o: b for o, b in zip(outcomes, fresh) if isinstance(o, str)}
        parse_error = await self._parse(owner, session, token, by_id)
        for o in outcomes:
            if isinstance(o, GatewayError):
                raise o
        if parse_error is not None:
            raise parse_error
        known.update((b.sha256, fid) for fid, b in by_id.items())
        return tuple(known[b.sha256] for b in blobs)

    async def _parse(self, owner: str, session, token: str,
                     by_id: dict) -> GatewayError | None:
        """Waits for Kimi to parse the new uploads; the error to report, if any."""
        async def ready(file_id: str) -> None:
            await self.store.remember(owner, by_id[file_id].sha256, file_id)

        try:
            failed = await self.uploader.wait_parsed(session, token, list(by_id), on_ready=ready)
        except ParseTimedOut as e:
            b = by_id[e.file_ids[0]]
            return UpstreamTimeout(f"{b.where}: Kimi did not finish parsing {b.filename} within "
                                   f"{self.uploader.parse_timeout:g}s", param=b.where,
                                   code="file_parse_timeout")
        except GatewayError as e:
            return e
        if failed:
            b = by_id[failed[0]]
            return InvalidRequest(f"{b.where}: Kimi could not read {b.filename} (parsing failed)",
                                  param=b.where, code="file_parse_failed")
        return None

    async def _still_there(self, owner: str, session, token: str,
                           known: dict[str, str]) -> dict[str, str]:
        """Remembered uploads Kimi still has (one cheap call); the rest are forgotten."""
        try:
            statuses = await self.uploader.statuses(session, token, list(known.values()))
        except NotFound:    # Kimi: an unknown id fails the whole call
            statuses = {}
        good = {sha: fid for sha, fid in known.items() if statuses.get(fid) in SUCCESS}
        stale = [sha for sha in known if sha not in good]
        if stale:
            await self.store.forget(owner, stale)
        return good

    async def _upload(self, session, token: str, b) -> str:
        try:
            return await self.uploader.upload(session, token, b.filename, b.mime, b.content())
        except GatewayError as e:
            e.message, e.param = f"{b.where}: {e.message}", b.where
            e.args = (e.message,)
            raise



def upload_owner(account, token: str) -> str:
    """Uploads belong to the Kimi user (the token's `sub`), whichever token of theirs is used."""
    sub = (jwt_claims(token) or {}).get("sub")
    if isinstance(sub, str) and sub:
        return "user-" + hashlib.sha256(sub.encode()).hexdigest()[:16]
    return "key-" + account.key


async def run_all(coros, limit: int, discard=None, settle: bool = False) -> list:
    """Runs coroutines at most `limit` at a time. With `settle`, exceptions come back as
    results; otherwise the first failure cancels the rest (and discards results already
    made) before it is raised."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(coro):
        async with gate:
            return await coro

    tasks = [asyncio.ensure_future(one(c)) for c in coros]
    try:
        return await asyncio.gather(*tasks, return_exceptions=settle)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in coros:
            c.close()   # a coroutine cancelled before it started would warn otherwise
        if discard is not None:
            for t in tasks:
                if not t.cancelled() and t.exception() is None:
                    discard(t.result())
        raise

