"""Bytes sent upstream per step of a tool loop. `python bench/tool_loop.py [--steps 20]`

An agent resends its whole history every step: a 40 KB system prompt and tool list, then
every call and result so far. The gateway continues the same Kimi chat when the history
extends a stored turn, so only the new tool results and a reminder go upstream. This runs a
20-step loop twice against the emulator, in this process (no timing is measured): resending
everything (automatic continuation off) and continuing the chat (the default), and prints
the prompt bytes each step sent beyond its new tool results.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile

import aiohttp
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kimi.app import create_app  # noqa: E402
from kimi.config import load_config  # noqa: E402
from kimi.emulator import EmulatorState, Reply, create_app as create_emulator  # noqa: E402
from kimi.emulator import mint_access_token  # noqa: E402

RESULT_BYTES = 600


def tools(total_bytes: int = 32_000) -> list[dict]:
    per = total_bytes // 20
    return [{"type": "function", "function": {
        "name": f"tool_{i}", "description": (f"Tool {i} does step {i} of the work. " * 200)[:per],
        "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                                                        "limit": {"type": "integer"}},
                       "required": ["path"]}}} for i in range(20)]


SYSTEM = "You are a coding agent. Follow the project's rules carefully. " * 130   # ~8 KB


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def prompt_of(request: dict) -> str:
    return "".join((b.get("text") or {}).get("content", "") for b in request["message"]["blocks"])


async def loop(steps: int, continue_chats: bool, workdir: str) -> list[tuple[int, int]]:
    """(prompt bytes sent upstream, bytes of that step's new tool results) per step."""
    state = EmulatorState()
    emu_runner, emu_url = await serve(create_emulator(state))
    cfg = load_config(None, env={})
    cfg = dataclasses.replace(
        cfg, kimi=dataclasses.replace(cfg.kimi, base_url=emu_url, auth_url=emu_url,
                                      tokens=(mint_access_token("bench"),)),
        store=dataclasses.replace(cfg.store, path=os.path.join(workdir, f"s{continue_chats}.db"),
                                  auto_continue_minutes=30 if continue_chats else 0))
    gw_runner, gw_url = await serve(create_app(cfg))
    history = [{"role": "system", "content": SYSTEM},
               {"role": "user", "content": "Fix the failing test in the repository."}]
    out, new_results = [], 0
    try:
        async with aiohttp.ClientSession() as s:
            for step in range(steps):
                state.replies.append(Reply(text=f'<tool_call name="tool_{step % 20}">'
                                                f'{{"path": "src/file_{step}.py"}}</tool_call>'))
                async with s.post(gw_url + "/v1/chat/completions", json={
                        "model": "kimi", "messages": history, "tools": tools()}) as r:
                    body = await r.json()
                message = body["choices"][0]["message"]
                out.append((len(prompt_of(state.chat_requests[-1]).encode()), new_results))
                history.append(message)
                result = f"step {step} output: " + "x" * RESULT_BYTES
                history.append({"role": "tool", "tool_call_id": message["tool_calls"][0]["id"],
                                "content": result})
                new_results = len(result.encode())
    finally:
        await gw_runner.cleanup()
        await emu_runner.cleanup()
    return out


def render(resend: list, cont: list) -> str:
    lines = ["| step | resend everything (bytes) | continue the chat (bytes) | "
             "of which new tool results | beyond the new results |",
             "|---:|---:|---:|---:|---:|"]
    for k, ((a, _), (b, new)) in enumerate(zip(resend, cont), 1):
        lines.append(f"| {k} | {a:,} | {b:,} | {new:,} | {b - new:,} |")
    total_a, total_b = sum(a for a, _ in resend), sum(b for b, _ in cont)
    worst = max((b - new for b, new in cont[1:]), default=0)
    lines.append(f"\nTotal upstream prompt bytes over {len(cont)} steps: {total_a:,} resending "
                 f"everything, {total_b:,} continuing ({total_a / max(total_b, 1):.1f}x less). "
                 f"After step 1 the most any step sent beyond its new tool results: {worst:,} "
                 f"bytes (target: at most 2,048).")
    return "\n".join(lines)


async def main_async(steps: int) -> str:
    with tempfile.TemporaryDirectory() as workdir:
        resend = await loop(steps, False, workdir)
        cont = await loop(steps, True, workdir)
    return render(resend, cont)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(asyncio.run(main_async(args.steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

