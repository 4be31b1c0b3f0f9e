"""Writing one ChatService/Chat response stream: frame writer and the event sequence."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from .framing import DATA, END_STREAM, encode_frame
from .spelling import spelled
from .state import (DEFAULT_THINK, ChatRecord, EmulatorState, Fault, MessageRecord, Reply,
                    default_text)

CITATION_MARKERS = {
    "e3a0": ("\ue3a0", "\ue3a3", "\ue3a8"),
    "2026": ("\U0001F6E0", "\ue3a3", "\U0001F3A8"),
}
SENTENCE_PUNCT = ".!?\u3002\uff01\uff1f"
SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])(?=\s|$)")
DEFAULT_REASON = "REASON_SERVER_OVERLOADED_FOR_FREE_USER"
DEFAULT_MESSAGE = "The server is busy, please try again later."


def error_object(code: str, message: str, reason: str | None = None,
                 paywall: dict | None = None) -> dict:
    debug: dict = {"localizedMessage": {"message": message}}
    if reason:
        debug = {"reason": reason, **debug}
    if paywall is not None:
        debug["paywall"] = paywall
    return {"error": {"code": code, "message": message, "details": [{"debug": debug}]}}


def fault_error(fault: Fault) -> dict:
    message = fault.message or DEFAULT_MESSAGE
    return error_object(fault.code or "resource_exhausted", message,
                        fault.reason or DEFAULT_REASON, fault.paywall)


def default_search(prompt: str) -> list[dict]:
    topic = prompt.strip()[:40] or "the topic"
    return [
        {"title": f"Emulated result {i + 1} about {topic}", "url": f"https://example.com/r{i + 1}",
         "snippet": f"Snippet {i + 1}: facts about {topic}.", "siteName": f"Example {i + 1}"}
        for i in range(3)
    ]


def add_citations(text: str, count: int, style: str) -> str:
    """Append a citation marker after each sentence; sentence k cites result k % count."""
    if count <= 0:
        return text
    start, sep, end = CITATION_MARKERS.get(style, CITATION_MARKERS["e3a0"])
    parts = SENTENCE_END.split(text)
    out, cited = [], 0
    for part in parts:
        if part and part[-1] in SENTENCE_PUNCT:
            part += f"{start}cite{sep}web_search:1#{cited % count}{end}"
            cited += 1
        out.append(part)
    if not cited:
        out.append(f"{start}cite{sep}web_search:1#0{end}")
    return "".join(out)


def huge_text(size: int) -> str:
    """Mixed ASCII / multi-byte text of exactly ``size`` UTF-8 bytes."""
    unit = "Hello, \u4e16\u754c \U0001F680 caf\u00e9! "
    unit_bytes = len(unit.encode())
    text = unit * (size // unit_bytes)
    return text + "x" * (size - len(text.encode()))


def pieces(text: str, chunk: int) -> list[str]:
    chunk = max(1, chunk)
    return [text[i:i + chunk] for i in range(0, len(text), chunk)] or [""]


class Cancelled(Exception):
    pass


class FrameWriter:
    """Writes frames; implements the split/coalesce write modes and cancel-aware waits."""

    def __init__(self, request: web.Request, resp: web.StreamResponse, state: EmulatorState,
                 fault: Fault | None, cancel: asyncio.Event) -> None:
        self.request, self.resp, self.state, self.cancel = request, resp, state, cancel
        # "garbage" coalesces too, so that its bad frame shares one read with the good ones.
        modes = {"split": "split", "coalesce": "coalesce", "garbage": "coalesce"}
        self.mode = modes.get(fault.kind, "normal") if fault else "normal"
        self.piece = max(1, (fault.size or 1) if fault else 1)
        self.buffer = bytearray()
        self.pending = 0            # frames in `buffer` (normal mode, frames_per_write > 1)
        self.offset = 0

    async def _write(self, data: bytes) -> None:
        if self.mode == "normal":
            if self.state.frames_per_write <= 1:
                await self.resp.write(data)
                return
            # A busy upstream: several frames reach the client in one network read.
            self.buffer += data
            self.pending += 1
            if self.pending >= self.state.frames_per_write:
                await self.flush()
            return
        self.buffer += data
        while self.mode == "split" and len(self.buffer) >= self.piece:
            piece = bytes(self.buffer[:self.piece])
            del self.buffer[:self.piece]
            await self.resp.write(piece)
            await asyncio.sleep(0)

    async def flush(self) -> None:
        self.pending = 0
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            await self.resp.write(data)

    async def frame(self, obj: dict, flag: int = DATA) -> None:
        await self._write(encode_frame(spelled(obj, self.state.field_names), flag))
        if flag == DATA and self.state.chunk_delay > 0:
            await self.wait(self.state.chunk_delay)

    async def raw_frame(self, body: bytes) -> None:
        """A data frame whose body is `body` as is (not necessarily JSON)."""
        await self._write(bytes([DATA]) + len(body).to_bytes(4, "big") + body)

    async def event(self, op: str, mask: str, **payload) -> None:
        self.offset += 1
        await self.frame({"op": op, "mask": mask, "eventOffset": self.offset, **payload})

    async def done(self) -> None:
        self.offset += 1
        await self.frame({"eventOffset": self.offset, "done": {}})

    async def end(self, error: dict | None = None) -> None:
        await self._write(encode_frame(error or {}, END_STREAM))
        await self.flush()
        if self.state.end_pause > 0:
            # The response stays open a moment after its end-stream frame (its chunked
            # terminator comes later), as it may over a real network.
            await asyncio.sleep(self.state.end_pause)

    async def wait(self, seconds: float, heartbeat: float | None = None) -> None:
        """Sleep (sending heartbeats every ``heartbeat`` s); raise Cancelled on CancelChat."""
        if self.cancel.is_set():
            raise Cancelled
        if seconds <= 0 or self.mode == "coalesce":
            return
        await self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            step = min(remaining, heartbeat) if heartbeat else remaining
            try:
                await asyncio.wait_for(self.cancel.wait(), step)
                raise Cancelled
            except TimeoutError:
                pass
            if heartbeat and deadline - loop.time() > 0.001:
                await self._write(encode_frame({"heartbeat": {}}))
                await self.flush()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled


@dataclass
class Turn:
    """One answer: everything needed to emit the canonical event sequence."""

    writer: FrameWriter
    state: EmulatorState
    chat: ChatRecord
    user: MessageRecord
    assistant: MessageRecord
    reply: Reply
    prompt: str
    scenario: str
    thinking: bool
    search: list | None
    files: list = field(default_factory=list)
    text_events: int = 0
    block_id: int = 0

    def _next_block(self) -> str:
        self.block_id += 1
        return str(self.block_id)

    async def run(self) -> None:
        w = self.writer
        try:
            await w.frame({"heartbeat": {}})
            await self._prelude()
            await self._answer()
        except Cancelled:
            self.assistant.status = "MESSAGE_STATUS_CANCELLED"
            await w.event("set", "message.status", message={
                "id": self.assistant.id, "status": "MESSAGE_STATUS_CANCELLED"})
            await w.done()
            await w.end()

    async def _prelude(self) -> None:
        w, chat = self.writer, self.chat
        await w.event("set", "chat", chat={"id": chat.id, "name": chat.name,
                                           "createTime": chat.create_time})
        blocks = [{"messageId": "", "text": {"content": self.prompt}}]
        blocks += [{"messageId": "", "file": {"id": f.id}} for f in self.files]
        await w.event("set", "message", message={
            "id": self.user.id, "parentId": self.user.parent_id, "role": "user",
            "status": "MESSAGE_STATUS_COMPLETED", "blocks": blocks, "scenario": self.scenario,
            "createTime": self.user.create_time})
        if self.files:
            await w.event("append", "chat.files", chat={"id": chat.id, "files": [
                {"id": f.id, "meta": {"name": f.name, "contentType": f.content_type,
                                      "sizeBytes": str(len(f.data))}} for f in self.files]})
        await w.event("set", "message", message={
            "id": self.assistant.id, "parentId": self.user.id, "role": "assistant",
            "status": "MESSAGE_STATUS_GENERATING", "blocks": [], "scenario": self.scenario,
            "createTime": self.assistant.create_time})

    async def _answer(self) -> None:
        w, reply, fault = self.writer, self.reply, self.reply.fault
        heartbeat = self.state.heartbeat_interval
        if reply.pause > 0:
            await w.wait(reply.pause, heartbeat)
        if fault and fault.kind == "silence":
            await w.wait(fault.seconds, (heartbeat or 1.0) if fault.heartbeats else None)
        if self.thinking:
            await self._think(reply.think if reply.think is not None else DEFAULT_THINK)
        if self.search:
            await self._search()
        if fault and fault.kind == "huge":
            parts = [huge_text(fault.size or 5 * 1024 * 1024)]
        else:
            parts = pieces(self.answer_text(), reply.chunk)
        text_block = self._next_block()
        for index, part in enumerate(parts):
            if await self._fault_point():
                return
            w.check_cancel()
            op, mask = ("set", "block.text") if index == 0 else ("append", "block.text.content")
            await w.event(op, mask, block={"id": text_block, "text": {"content": part}})
            self.assistant.text += part
            self.text_events += 1
        if await self._fault_point():
            return
        await self._finish()

    def answer_text(self) -> str:
        if self.reply.text is not None:
            text = self.reply.text
        else:
            text = default_text(self.chat.user_turns(self.user.id), self.prompt)
        if self.search:
            text = add_citations(text, len(self.search), self.reply.citations)
        return text

    async def _think(self, think: str) -> None:
        w, block = self.writer, self._next_block()
        for index, part in enumerate(pieces(think, self.reply.chunk)):
            w.check_cancel()
            op, mask = ("set", "block.think") if index == 0 else ("append", "block.think.content")
            await w.event(op, mask, block={"id": block, "think": {"content": part}})
            self.assistant.think += part

    def search_items(self) -> list[dict]:
        return [{"id": f"web_search:1#{i}",
                 "base": {"title": r.get("title", ""), "url": r.get("url", ""),
                          "siteName": r.get("siteName", ""), "iconUrl": r.get("iconUrl", ""),
                          "snippet": r.get("snippet", ""), "publishTime": r.get("publishTime", "")},
                 "refIndex": f"web_search:1#{i}"} for i, r in enumerate(self.search or [])]

    async def _search(self) -> None:
        w, block = self.writer, self._next_block()
        w.check_cancel()
        args = orjson.dumps({"queries": [self.prompt.strip()[:100]]}).decode()
        await w.event("set", "block.tool", block={"id": block, "parentId": "", "tool": {
            "toolCallId": "web_search_0", "name": "web_search", "status": "STATUS_PENDING"}})
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            await w.event("append", "block.tool.args", block={"id": block, "tool": {"args": part}})
        await w.event("set", "block.tool.args,block.tool.status,block.tool.toolCallId",
                      block={"id": block, "tool": {"args": args, "status": "STATUS_RUNNING",
                                                   "toolCallId": "web_search:1"}})
        items = self.search_items()
        await w.event("set", "block.tool.contents,block.tool.status", block={"id": block, "tool": {
            "contents": [{"searchResult": item} for item in items], "status": "STATUS_DONE"}})
        await w.event("append", "message.refs.searchChunks",
                      message={"id": self.assistant.id, "refs": {"searchChunks": items}})

    async def _fault_point(self) -> bool:
        """Trigger an ``after``-style fault when the text event count reaches it."""
        fault, w = self.reply.fault, self.writer
        if not fault or fault.kind not in ("error", "truncate", "moderation", "garbage"):
            return False
        if self.text_events != fault.after:
            return False
        if fault.kind == "error":
            error = fault_error(fault)
            if fault.where != "endstream":
                await w.frame(error)
            await w.end(error)
        elif fault.kind == "garbage":
            await w.raw_frame(b"{this is not json")
            await w.end()
        elif fault.kind == "moderation":
            self.assistant.status = "MESSAGE_STATUS_BLOCKED"
            await w.event("set", "message.status", message={
                "id": self.assistant.id, "status": "MESSAGE_STATUS_BLOCKED"})
            await w.done()
            await w.end()
        else:
            await w.flush()
            transport = w.request.transport
            if transport is not None:
                transport.close()
        return True

    async def _finish(self) -> None:
        w, reply = self.writer, self.reply
        if self.search:
            await w.event("set", "message.refs.usedSearchChunks", message={
                "id": self.assistant.id, "refs": {"usedSearchChunks": self.search_items()}})
        self.chat.name = reply.title
        await w.event("set", "chat.name", chat={"id": self.chat.id, "name": reply.title})
        self.assistant.status = "MESSAGE_STATUS_COMPLETED"
        await w.event("set", "message.status", message={
            "id": self.assistant.id, "status": "MESSAGE_STATUS_COMPLETED"})
        await w.done()
        fault = reply.fault
        if fault and fault.kind == "done_then_error":
            await w.end(fault_error(fault))
        else:
            await w.end()
