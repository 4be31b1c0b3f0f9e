"""The emulator in its own process, plus a loopback-only control port for the benchmark.

`python bench/emulator_proc.py --port P --control-port C`. The control app shares the
emulator's state object: `POST /knobs` sets `call_delay`, `chunk_delay`, `frames_per_write`;
`GET /calls` lists the calls received (path and monotonic time; CLOCK_MONOTONIC is
system-wide, so the bench process can compare them with its own clock); `GET /connections`
says how many client connections have carried a request so far; `POST /reset` forgets calls
and chats so that a long run does not grow the emulator. `POST /replies` takes a JSON list of
`{"text", "think", "chunk", "when"}` objects and queues them as scripted replies, answered in
order by the next chat streams whose prompt contains `when` (if given; then the default
answer); `GET /requests` lists the chat request payloads received (what the gateway sent
upstream). The emulator app itself is untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson  # noqa: E402
from aiohttp import web  # noqa: E402

from kimi.emulator import EmulatorState, Reply, create_app  # noqa: E402

KNOBS = ("call_delay", "chunk_delay", "frames_per_write")
REPLY_FIELDS = {"text": str, "think": str, "chunk": int, "when": str}


def parse_replies(body) -> list[Reply]:
    """Replies from a JSON list; ValueError names the first thing that is not one."""
    if not isinstance(body, list):
        raise ValueError("expected a JSON list of replies")
    replies = []
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise ValueError(f"reply {i} is not an object")
        for key, value in item.items():
            kind = REPLY_FIELDS.get(key)
            if kind is None:
                raise ValueError(f"reply {i}: unknown field {key}")
            if value is not None and (type(value) is not kind):
                raise ValueError(f"reply {i}: {key} must be {kind.__name__}")
        if item.get("chunk") is not None and item["chunk"] < 1:
            raise ValueError(f"reply {i}: chunk must be at least 1")
        replies.append(Reply(**{k: v for k, v in item.items() if v is not None}))
    return replies


def control_app(state: EmulatorState) -> web.Application:
    async def knobs(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        for key, value in body.items():
            if key not in KNOBS:
                return web.json_response({"error": f"unknown knob {key}"}, status=400)
            setattr(state, key, int(value) if key == "frames_per_write" else float(value))
        return web.json_response({k: getattr(state, k) for k in KNOBS})

    async def calls(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps([[c.path, c.time] for c in state.calls]),
                            content_type="application/json")

    async def replies(request: web.Request) -> web.Response:
        try:
            new = parse_replies(orjson.loads(await request.read()))
        except orjson.JSONDecodeError as exc:
            return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        state.replies.extend(new)
        return web.json_response({"queued": len(state.replies)})

    async def requests(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(list(state.chat_requests)),
                            content_type="application/json")

    async def connections(request: web.Request) -> web.Response:
        return web.json_response({"connections": state.connections})

    async def reset(request: web.Request) -> web.Response:
        state.calls.clear()
        state.chat_requests.clear()
        state.deleted.clear()
        # Only finished chats: an open stream still refers to its record.
        for chat_id in [c for c in state.chats if c not in state.streams]:
            del state.chats[chat_id]
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/knobs", knobs)
    app.router.add_get("/calls", calls)
    app.router.add_get("/connections", connections)
    app.router.add_post("/reset", reset)
    app.router.add_post("/replies", replies)
    app.router.add_get("/requests", requests)
    return app


async def serve(port: int, control_port: int) -> None:
    state = EmulatorState()
    runners = []
    for app, p in ((create_app(state), port), (control_app(state), control_port)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", p, backlog=4096).start()
        runners.append(runner)
    print(f"emulator on {port}, control on {control_port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(serve(args.port, args.control_port))


if __name__ == "__main__":
    main()
