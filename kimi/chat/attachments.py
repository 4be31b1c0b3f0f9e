"""Attachments of a request -> their content, checked and downloaded once per turn.

Order matters for "nothing half-done": every check that needs no upstream happens first
(sizes, then all downloads with their address checks), and only when every part is in hand
does anything go to Kimi (kimi.upstream.uploads turns the content into file ids there).
"""

from __future__ import annotations

from ..canonical.request import Attachment, ChatRequest
from ..upstream.uploads import run_all
from .fetch import Blob, RemoteFetcher, inline_blob, too_large


class AttachmentService:
    def __init__(self, fetcher: RemoteFetcher, *, max_bytes: int, parallel: int = 4):
        self.fetcher = fetcher
        self.max_bytes = max_bytes
        self.parallel = parallel

    async def close(self) -> None:
        await self.fetcher.close()

    async def gather(self, req: ChatRequest, messages: list | None = None) -> list[Blob]:
        """The content of every attachment in `messages` (default: the whole history), in
        order of first appearance, checked and downloaded once per turn, before an account is
        taken. A continued chat passes only its new turns: the files of earlier turns are
        already in the upstream chat. The caller closes the blobs (`close`)."""
        items = [a for m in (req.messages if messages is None else messages) for a in m.attachments]
        if not items:
            return []
        for a in items:
            if a.data is not None and len(a.data) > self.max_bytes:
                raise too_large(a, self.max_bytes)
        return await self._materialize(items)

    @staticmethod
    def close_all(blobs: list[Blob]) -> None:
        for b in blobs:
            b.close()

    async def _materialize(self, items: list[Attachment]) -> list[Blob]:
        """Content of each distinct attachment (a URL repeated in the history is fetched once,
        identical content is kept once)."""
        by_url = {a.url: a for a in reversed(items) if a.url}     # first occurrence wins
        todo = [a for a in items if a.data is not None or by_url.get(a.url) is a]
        blobs = await run_all([self.fetcher.fetch(a) if a.url else inline_blob(a) for a in todo],
                              self.parallel, discard=Blob.close)
        unique: dict[str, Blob] = {}
        for b in blobs:
            if b.sha256 in unique:
                b.close()
            else:
                unique[b.sha256] = b
        return list(unique.values())

