"""Connect error responses (unary JSON and stream-only end-stream error)."""

from __future__ import annotations

from aiohttp import web

from .framing import END_STREAM, encode_frame

STATUS_CODES = {
    400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied",
    404: "not_found", 405: "unimplemented", 409: "aborted", 412: "failed_precondition",
    429: "resource_exhausted", 500: "internal", 501: "unimplemented", 502: "unavailable",
    503: "unavailable", 504: "deadline_exceeded",
}
CONNECT_STREAM = "application/connect+json"


def connect_error(status: int, code: str | None = None, message: str = "",
                  headers: dict | None = None) -> web.Response:
    body = {"code": code or STATUS_CODES.get(status, "unknown")}
    if message:
        body["message"] = message
    return web.json_response(body, status=status, headers=headers)


async def stream_error(request: web.Request, error: dict, data_frame: bool = False,
                       heartbeat: bool = False) -> web.StreamResponse:
    """HTTP 200 stream carrying ``error`` (``{"error":{...}}``) in the end-stream frame,
    preceded by a data frame with the same error when ``data_frame`` (and by a heartbeat
    frame when ``heartbeat``)."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": CONNECT_STREAM})
    await resp.prepare(request)
    if heartbeat:
        await resp.write(encode_frame({"heartbeat": {}}))
    if data_frame:
        await resp.write(encode_frame(error))
    await resp.write(encode_frame(error, END_STREAM))
    await resp.write_eof()
    return resp


def simple_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
