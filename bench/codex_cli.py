"""The real Codex CLI against the gateway and the emulator: python bench/codex_cli.py [CODEX]

A manual check, not a test (Codex is a 400 MB npm package: `npm install @openai/codex`, then
pass node_modules/.bin/codex). Starts the emulator and the gateway in this process, writes a
CODEX_HOME with the provider block the README shows, and runs `codex exec` on a task the
emulator answers in three steps: an `apply_patch` call that adds a file, a shell command that
reads it, then a final answer. Prints Codex's output, the file it wrote, the requests Codex
made (its model metadata request first), the tools it offered the model, and the size of each
prompt that went upstream with its Kimi chat id: from step 2 only the new tool output goes
upstream, in the same chat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import sys
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kimi.app import create_app  # noqa: E402
from kimi.config import load_config  # noqa: E402
from kimi.emulator import EmulatorState, Reply, mint_access_token  # noqa: E402
from kimi.emulator import create_app as create_emulator  # noqa: E402
from kimi.web.examples import CODEX  # noqa: E402

STEPS = [
    '<tool_call name="apply_patch">\n*** Begin Patch\n*** Add File: hello.txt\n+hello from kimi\n'
    "*** End Patch\n</tool_call>",
    '<tool_call name="exec_command">\n{"cmd": "cat hello.txt"}\n</tool_call>',
    "Created hello.txt and checked it.",
]


def gateway_config(emu_url: str, tmp: Path):
    cfg = load_config(None, env={})
    return dataclasses.replace(
        cfg, kimi=dataclasses.replace(cfg.kimi, base_url=emu_url, auth_url=emu_url,
                                      tokens=(mint_access_token("codex"),)),
        store=dataclasses.replace(cfg.store, path=str(tmp / "store.sqlite3")))


async def main(codex: str) -> None:
    state = EmulatorState()
    for text in STEPS:
        state.replies.append(Reply(text=text, chunk=5))
    emu = TestServer(create_emulator(state))
    await emu.start_server()
    tmp, work = Path(tempfile.mkdtemp()), tempfile.mkdtemp()
    app = create_app(gateway_config(str(emu.make_url("")).rstrip("/"), tmp))
    seen = []       # every request Codex made of the gateway, with the answer's status

    async def note(request, response):
        seen.append(f"{request.method} {request.path_qs} -> {response.status}")
    app.on_response_prepare.append(note)
    gw = TestServer(app)
    await gw.start_server()
    home = tmp / "codex"
    home.mkdir()
    # The config.toml the homepage and README give users, as they would paste it.
    (home / "config.toml").write_text(CODEX.format(base=str(gw.make_url("")).rstrip("/"),
                                                   key="unused"))
    env = {**os.environ, "CODEX_HOME": str(home), "KIMI_GATEWAY_KEY": "placeholder"}
    try:
        proc = await asyncio.create_subprocess_exec(
            codex, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
            "-C", work, "Create hello.txt saying hello, then show it", env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    finally:
        await gw.close()
        await emu.close()
    print(out.decode()[-2500:])
    print(f"codex exit code: {proc.returncode}")
    written = Path(work, "hello.txt")
    print(f"hello.txt: {written.read_text()!r}" if written.exists() else "hello.txt: missing")
    print("requests:", *seen, sep="\n  ")
    first = "".join((b.get("text") or {}).get("content", "")
                    for b in state.chat_requests[0]["message"]["blocks"])
    tools = re.findall(r'<tool name="([^"]+)"( input="text")?>', first)
    print("tools offered:", ", ".join(n + (" (freeform)" if t else "") for n, t in tools))
    for i, r in enumerate(state.chat_requests):
        prompt = "".join((b.get("text") or {}).get("content", "") for b in r["message"]["blocks"])
        print(f"upstream prompt {i + 1}: {len(prompt):>6} characters, "
              f"chat {r.get('chat_id') or r.get('chatId') or '(new)'}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "codex"))
