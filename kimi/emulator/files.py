"""File upload, parse progress and signed-object download (``/apiv2-files``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.parse

from aiohttp import web

from .errors import connect_error
from .state import EmulatorState, FileRecord

UPLOAD = "/apiv2-files/file/upload"
PARSE_PROGRESS = "/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress"
SIGN_OBJ = "/apiv2-files/sign-obj/"


def sign_url(request: web.Request, record: FileRecord, kind: str = "o") -> str:
    query = urllib.parse.urlencode({"filename": record.name, "sig": "emulated", "t": kind})
    return (f"{request.url.origin()}{SIGN_OBJ}kimi-fs%2Ffiles%2Fblob%2F{record.checksum}"
            f"?{query}")


async def upload(request: web.Request, state: EmulatorState, sub: str) -> web.Response:
    state.uploads_active += 1
    state.max_uploads_active = max(state.max_uploads_active, state.uploads_active)
    try:
        if state.upload_delay > 0:
            await asyncio.sleep(state.upload_delay)
        return await _upload(request, state, sub)
    finally:
        state.uploads_active -= 1


async def _upload(request: web.Request, state: EmulatorState, sub: str) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        return connect_error(400, "invalid_argument", "expected multipart/form-data")
    reader = await request.multipart()
    part = None
    while (candidate := await reader.next()) is not None:
        if candidate.name == "file":
            part = candidate
            break
    if part is None:
        return connect_error(400, "invalid_argument", "missing multipart field 'file'")
    name = part.filename or "file"
    content_type = part.headers.get("Content-Type", "application/octet-stream")
    data = bytes(await part.read())
    if name in state.upload_fail_names:
        return connect_error(500, "internal", "emulated upload failure")
    record = FileRecord(id=state.new_id(), sub=sub, name=name, content_type=content_type,
                        data=data, progress_left=state.parse_steps,
                        checksum=hashlib.sha256(data).hexdigest())
    state.files[record.id] = record
    is_image = content_type.startswith("image/")
    parse_result = {}
    if is_image:
        parse_result = {"thumbnail": {"thumbnailUrl": sign_url(request, record, "t"),
                                      "previewUrl": sign_url(request, record, "p"),
                                      "mobileThumbnailUrl": sign_url(request, record, "m")}}
    return web.json_response({"file": {
        "id": record.id,
        "meta": {"name": name, "contentType": content_type, "sizeBytes": str(len(data)),
                 "checksum": record.checksum, "ext": os.path.splitext(name)[1].lstrip("."),
                 "createTime": record.create_time,
                 "type": "FILE_TYPE_IMAGE" if is_image else "FILE_TYPE_DOCUMENT"},
        "blob": {"signUrl": sign_url(request, record), "previewUrl": ""},
        "parseResult": parse_result}})


def parse_progress(state: EmulatorState, sub: str, body: dict):
    ids = body.get("file_ids", body.get("fileIds")) or []
    if not isinstance(ids, list):
        return connect_error(400, "invalid_argument", "file_ids must be a list")
    progresses = []
    for file_id in ids:
        record = state.files.get(file_id) if isinstance(file_id, str) else None
        if record is None or record.sub != sub:
            return connect_error(404, "not_found", f"file {file_id!r} not found")
        if record.name in state.parse_never:
            status = "PROCESSING"
        elif record.progress_left > 0:
            record.progress_left -= 1
            status = "PROCESSING"
        else:
            status = "FAILED" if record.name in state.parse_fail else "SUCCESS"
        progresses.append({"fileId": file_id, "status": "PROCESS_STATUS_" + status})
    return {"progresses": progresses}


async def sign_obj(request: web.Request, state: EmulatorState) -> web.Response:
    object_name = urllib.parse.unquote(request.raw_path.split("?", 1)[0][len(SIGN_OBJ):])
    checksum = object_name.rsplit("/", 1)[-1]
    for record in state.files.values():
        if record.checksum == checksum:
            filename = request.query.get("filename", record.name)
            return web.Response(body=record.data, content_type=record.content_type, headers={
                "Content-Disposition": f'attachment; filename="{filename}"'})
    return connect_error(404, "not_found", "object not found")
