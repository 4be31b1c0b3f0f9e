"""Claude Code's tool loop on the Anthropic API: bytes in, bytes upstream, reported tokens.
`python bench/claude_code_loop.py [--steps 20]`

Replays the recorded-shape main-loop request (tests/data/claude_code_main.json: 22 tools,
billing block, thinking) for a number of steps the way Claude Code sends them: the whole
history every step, thinking blocks replayed, a new billing block each time. Each step the
emulator answers with one Read call and the loop adds a tool result of RESULT_BYTES. Prints,
per step, what Claude Code sent, what went upstream to Kimi, and the input_tokens reported
back (the whole logical prompt, which Claude Code compacts from). No timing is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.tool_loop import prompt_of, serve  # noqa: E402
from kimi.app import create_app  # noqa: E402
from kimi.config import load_config  # noqa: E402
from kimi.emulator import EmulatorState, Reply, create_app as create_emulator  # noqa: E402
from kimi.emulator import mint_access_token  # noqa: E402
from tests.anthropic_sse import blocks, check_stream  # noqa: E402

RESULT_BYTES = 600
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "claude_code_main.json")
HEADERS = {"Authorization": "Bearer bench", "anthropic-version": "2023-06-01",
           "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}


async def gateway(workdir: str, emu_url: str):
    cfg = load_config(None, env={})
    cfg = dataclasses.replace(
        cfg, kimi=dataclasses.replace(cfg.kimi, base_url=emu_url, auth_url=emu_url,
                                      tokens=(mint_access_token("bench"),)),
        store=dataclasses.replace(cfg.store, path=os.path.join(workdir, "s.db")))
    return await serve(create_app(cfg))


async def loop(steps: int, workdir: str) -> list[tuple[int, int, int, int]]:
    """(request bytes, upstream prompt bytes, new tool result bytes, input_tokens) per step."""
    state = EmulatorState()
    emu_runner, emu_url = await serve(create_emulator(state))
    gw_runner, gw_url = await gateway(workdir, emu_url)
    body = json.load(open(FIXTURE))
    out, new_results = [], 0
    try:
        async with aiohttp.ClientSession() as s:
            for step in range(steps):
                state.replies.append(Reply(think=f"Step {step}: read the next file.", text=(
                    f'<tool_call name="Read">{{"file_path": "src/file_{step}.py"}}</tool_call>')))
                body["system"][0]["text"] = f"x-anthropic-billing-header: cch={step:05d};"
                data = json.dumps(body).encode()
                async with s.post(gw_url + "/v1/messages?beta=true", data=data,
                                  headers={**HEADERS, "Content-Type": "application/json"}) as r:
                    records = check_stream((await r.read()).decode())
                built = blocks(records)
                tokens = records[0][1]["message"]["usage"]["input_tokens"]
                out.append((len(data), len(prompt_of(state.chat_requests[-1]).encode()),
                            new_results, tokens))
                call = next(b for b in built if b["type"] == "tool_use")
                result = f"step {step} output: " + "x" * RESULT_BYTES
                body["messages"] += [{"role": "assistant", "content": built},
                                     {"role": "user", "content": [{
                                         "type": "tool_result", "tool_use_id": call["id"],
                                         "content": result}]}]
                new_results = len(result.encode())
    finally:
        await gw_runner.cleanup()
        await emu_runner.cleanup()
    return out


def render(rows: list) -> str:
    lines = ["| step | Claude Code sent (bytes) | upstream prompt (bytes) | of which new tool "
             "results | input_tokens reported |", "|---:|---:|---:|---:|---:|"]
    for k, (sent, up, new, tokens) in enumerate(rows, 1):
        lines.append(f"| {k} | {sent:,} | {up:,} | {new:,} | {tokens:,} |")
    total_sent, total_up = sum(r[0] for r in rows), sum(r[1] for r in rows)
    worst = max((up - new for _, up, new, _ in rows[1:]), default=0)
    lines.append(f"\nOver {len(rows)} steps Claude Code sent {total_sent:,} bytes and "
                 f"{total_up:,} went upstream ({total_sent / max(total_up, 1):.1f}x less). After "
                 f"step 1 the most any step sent beyond its new tool results: {worst:,} bytes.")
    return "\n".join(lines)


async def main_async(steps: int) -> str:
    with tempfile.TemporaryDirectory() as workdir:
        return render(await loop(steps, workdir))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    print(asyncio.run(main_async(parser.parse_args().steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
