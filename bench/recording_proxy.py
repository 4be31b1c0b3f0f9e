"""A pass-through HTTP proxy that notes what a client sends: method, path, headers (secrets
redacted), JSON body, the status and the start of the answer. `shape()` says what a Chat
Completions or Messages body looks like without its texts. Used by bench/agent_trial.py."""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web


def shape(body) -> dict:
    """What a request body looks like, without its texts."""
    if not isinstance(body, dict):
        return {"body": type(body).__name__}
    shown = ("model", "stream", "store", "max_tokens", "max_output_tokens", "temperature",
             "tool_choice", "thinking", "stream_options", "parallel_tool_calls")
    out = {k: body[k] for k in shown if k in body}
    out["keys"] = sorted(body)
    if "tools" in body:
        out["tools"] = [t.get("name") or t.get("function", {}).get("name") for t in body["tools"]]
    system = body.get("system")
    if isinstance(system, list):
        out["system"] = [f"{b.get('type')}:{len(b.get('text', ''))}" for b in system]
    elif isinstance(system, str):
        out["system"] = f"str:{len(system)}"
    out["messages"] = [message_shape(m) for m in body.get("messages", [])]
    if isinstance(body.get("input"), list):     # the Responses API's items
        out["input"] = [i.get("type") or i.get("role") for i in body["input"]
                        if isinstance(i, dict)]
    return out


def message_shape(m: dict) -> str:
    content = m.get("content")
    if isinstance(content, list):
        parts = ",".join(p.get("type", "?") for p in content)
    else:
        parts = f"str:{len(content or '')}"
    extra = "+tool_calls" if m.get("tool_calls") else ""
    return f"{m.get('role')}[{parts}]{extra}"


class Recorder:
    """A pass-through proxy in front of the gateway that notes each request and status."""

    def __init__(self, upstream: str, path: str):
        self.upstream, self.path, self.records = upstream, path, []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw[:200].decode("latin-1")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if "authorization" in headers:    # keep the scheme only
            headers["authorization"] = headers["authorization"].split(" ")[0] + " <redacted>"
        if "x-api-key" in headers:
            headers["x-api-key"] = "<redacted>"
        record = {"method": request.method, "path": request.path_qs, "headers": headers,
                  "body": body}
        self.records.append(record)
        forward = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "accept-encoding")}
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            async with s.request(request.method, self.upstream + request.path_qs,
                                 headers=forward, data=raw) as r:
                record["status"] = r.status
                resp = web.StreamResponse(status=r.status, headers={
                    k: v for k, v in r.headers.items()
                    if k.lower() in ("content-type", "retry-after", "content-encoding")})
                await resp.prepare(request)
                sample = b""
                async for chunk in r.content.iter_any():
                    if len(sample) < 4000:
                        sample += chunk
                    await resp.write(chunk)
                record["response_sample"] = sample[:4000].decode("utf-8", "replace")
                await resp.write_eof()
                return resp

    def save(self) -> None:
        with open(self.path, "w") as f:
            for record in self.records:
                f.write(json.dumps(record) + "\n")
