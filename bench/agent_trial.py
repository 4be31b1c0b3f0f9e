"""Real agent clients against the gateway: one tool round trip each, end to end.
`python bench/agent_trial.py [CLIENT|all] [--npm-dir DIR] [--keep]`

Not part of the test suite and not run in CI: the clients are not dependencies of the project.
Install them outside the repository first:

    mkdir -p /tmp/agent-clients && cd /tmp/agent-clients
    npm install @anthropic-ai/claude-code opencode-ai

(the native binaries come in the platform packages, so their postinstall scripts need not run).
CLIENT: claude (Read), claude-bash (Bash), claude-multi (two Reads in one answer, one of a
missing file), claude-drift (the call in Kimi K2's own syntax with an invented result after
it), claude-websearch (WebSearch: Claude Code's own request with Anthropic's web_search server
tool, answered by Kimi's search; passes when the pages reach the main loop as its links), and the same for opencode (read, bash); opencode-thinking (read, with the
model `kimi-thinking`); opencode-responses (read, with the provider package `@ai-sdk/openai`,
which speaks the Responses API); claude-again and opencode-again: the first trial, then the client
again with `--continue` and a new prompt; claude-tui: the interactive Claude Code on a
pseudo-terminal (onboarding and folder trust answered in its ~/.claude.json), prompt typed.

Each trial starts the emulator (bench/emulator_proc.py, with its control port) and the gateway
as processes on loopback, puts a small recording proxy in front of the gateway, writes a file
into a fresh temporary directory, and scripts two emulator answers: a call of the client's file
reading tool in the gateway's contract format (taken by the first prompt that carries the
tool's schema), then a final text (taken by the prompt carrying the tool's result); the
clients' side calls (titles) get the emulator's default answer. The client
runs there with a temporary HOME and no network beyond loopback. The trial passes when the
client executed the tool (its result reached the emulator in the second upstream prompt) and
printed the final text. It prints every request the client sent (method, path, headers, body
shape) and what went upstream; `--keep` leaves the directory with the full records.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import pty
import re
import shutil
import sys
import tempfile

import aiohttp
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.procs import ROOT, _wait_http, free_port, gateway_config  # noqa: E402
from bench.recording_proxy import Recorder, shape  # noqa: E402
from kimi.emulator import mint_access_token  # noqa: E402

SECRET = "heliotrope-42"
# How Claude Code's WebSearch tool passes on a page a web_search_tool_result block listed.
WEB_RESULT = 'Links:'
FINAL = f"TRIAL-DONE: the note says {SECRET}."
PROMPT = "Read note.txt in the current directory and tell me what it says."
AGAIN_PROMPT = "What did the note say, again?"
AGAIN = f"TRIAL-AGAIN: it said {SECRET}."
SHOWN_HEADERS = ("user-agent", "content-type", "anthropic-version", "anthropic-beta", "x-app",
                 "x-stainless-lang", "x-stainless-package-version", "accept")
CLIENT_KEY = "trial-key"


class Stack:
    def __init__(self, workdir: str, api_key: str | None = None):
        self.workdir, self.procs, self.api_key = workdir, [], api_key
        ports = [free_port() for _ in range(4)]
        self.emu_port, self.ctl_port, self.gw_port, self.rec_port = ports
        self.control = f"http://127.0.0.1:{self.ctl_port}"
        self.url = f"http://127.0.0.1:{self.rec_port}"

    async def __aenter__(self) -> "Stack":
        emu = f"http://127.0.0.1:{self.emu_port}"
        await self.spawn("emulator", [os.path.join(ROOT, "bench", "emulator_proc.py"),
                                      "--port", str(self.emu_port),
                                      "--control-port", str(self.ctl_port)])
        await _wait_http(self.control + "/calls")
        config = os.path.join(self.workdir, "config.toml")
        with open(config, "w") as f:
            config_text = gateway_config(emu, self.gw_port, [mint_access_token("trial")],
                                         os.path.join(self.workdir, "store.sqlite3"))
            if self.api_key:
                config_text = config_text.replace(
                    "[server]\n", f'[server]\napi_keys = ["{self.api_key}"]\n', 1)
            f.write(config_text)
        await self.spawn("gateway", [os.path.join(ROOT, "gateway.py"), "-c", config])
        await _wait_http(f"http://127.0.0.1:{self.gw_port}/ping")
        self.recorder = Recorder(f"http://127.0.0.1:{self.gw_port}",
                                 os.path.join(self.workdir, "client_requests.jsonl"))
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.recorder.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.rec_port).start()
        return self

    async def spawn(self, name: str, argv: list[str]) -> None:
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        self.procs.append(await asyncio.create_subprocess_exec(
            sys.executable, *argv, stdout=log, stderr=log, cwd=ROOT))

    async def __aexit__(self, *exc) -> None:
        self.recorder.save()
        await self.runner.cleanup()
        for proc in reversed(self.procs):
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()

    async def script(self, replies: list[dict]) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.post(self.control + "/replies", json=replies) as r:
                r.raise_for_status()

    async def upstream(self) -> list[dict]:
        async with aiohttp.ClientSession() as s:
            async with s.get(self.control + "/requests") as r:
                return await r.json()


def base_env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TERM", "TZ")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"),
               XDG_STATE_HOME=os.path.join(home, ".local", "state"),
               # Anything that tries to leave loopback fails fast instead of hanging.
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               NO_PROXY="127.0.0.1,localhost")
    return env


def read_call(name: str, key: str, note: str) -> str:
    return f'<tool_call name="{name}">{{"{key}": "{note}"}}</tool_call>'


def bash_call(name: str) -> str:
    return (f'Let me look.\n<tool_call name="{name}">{{"command": "cat note.txt", '
            f'"description": "Show note.txt"}}</tool_call>')


def first_answer(kind: str, names: tuple[str, str], key: str, workdir: str) -> str:
    """The scripted tool-call answer: one read, one shell command, or two reads at once (the
    second of a file that does not exist, so one result is an error)."""
    note = os.path.join(workdir, "note.txt")
    if kind == "bash":
        return bash_call(names[1])
    if kind == "drift":     # Kimi K2's own call syntax, then an invented result (dropped)
        return ("I'll read it.<|tool_calls_section_begin|><|tool_call_begin|>functions."
                f"{names[0]}:0<|tool_call_argument_begin|>{{\"{key}\": \"{note}\"}}"
                "<|tool_call_end|><|tool_calls_section_end|>\nThe note says: nothing.")
    if kind == "multi":
        return (read_call(names[0], key, os.path.join(workdir, "missing.txt")) + "\n"
                + read_call(names[0], key, note))
    return read_call(names[0], key, note)


def claude_run(npm: str, stack: Stack, workdir: str, home: str, kind: str = "read",
               prompt: str = PROMPT, again: bool = False,
               tui: bool = False) -> tuple[list[str], dict, list]:
    env = base_env(home)
    env.update(ANTHROPIC_BASE_URL=stack.url, ANTHROPIC_AUTH_TOKEN=CLIENT_KEY,
               ANTHROPIC_MODEL="claude-sonnet-4-5",
               ANTHROPIC_DEFAULT_HAIKU_MODEL="claude-haiku-4-5",
               API_TIMEOUT_MS="600000", DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1",
               DISABLE_ERROR_REPORTING="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
    binary = os.path.join(npm, "node_modules", "@anthropic-ai", "claude-code-linux-x64", "claude")
    allowed = ["--allowedTools", {"bash": "Bash(cat:*)", "websearch": "WebSearch"}.get(kind, "Read")]
    if kind == "websearch":
        prompt = "Search the web for kimi gateway news and tell me what you find."
    argv = [binary, "-p", prompt, *(["--continue"] if again else []),
            "--output-format", "stream-json", "--verbose", *allowed]
    if tui:
        # What the first interactive run asks once (theme, trusting the folder), answered.
        with open(os.path.join(home, ".claude.json"), "w") as f:
            json.dump({"hasCompletedOnboarding": True, "theme": "dark",
                       "projects": {workdir: {"hasTrustDialogAccepted": True}}}, f)
        argv = [binary, *allowed]
    if kind == "websearch":
        # The main loop calls WebSearch; Claude Code then asks the gateway with Anthropic's
        # web_search server tool (Kimi's search answers it, the emulator's default results);
        # the final answer is taken only by a prompt whose tool result lists those pages.
        call = '<tool_call name="WebSearch">{"query": "kimi gateway news"}</tool_call>'
        return argv, env, [{"text": call, "when": '"WebSearch"'},
                           {"text": FINAL, "when": WEB_RESULT}]
    call = first_answer(kind, ("Read", "Bash"), "file_path", workdir)
    replies = [{"think": "I should read the file.", "when": '"file_path"', "text": call},
               {"text": FINAL, "when": SECRET}]
    return argv, env, replies


def opencode_run(npm: str, stack: Stack, workdir: str, home: str, kind: str = "read",
                 model: str = "kimi", prompt: str = PROMPT, again: bool = False,
                 sdk: str = "@ai-sdk/openai-compatible") -> tuple[list[str], dict, list]:
    env = base_env(home)
    env.update(OPENCODE_DISABLE_AUTOUPDATE="1", OPENCODE_DISABLE_MODELS_FETCH="1",
               OPENCODE_DISABLE_LSP_DOWNLOAD="1", OPENCODE_DISABLE_DEFAULT_PLUGINS="1")
    config = {"$schema": "https://opencode.ai/config.json",
              "provider": {"kimi": {"npm": sdk, "name": "Kimi gateway",
                                    "options": {"baseURL": stack.url + "/v1",
                                                "apiKey": CLIENT_KEY},
                                    "models": {model: {"name": "Kimi"}}}},
              "model": f"kimi/{model}", "small_model": f"kimi/{model}",
              "autoupdate": False, "share": "disabled"}
    os.makedirs(os.path.join(home, ".config", "opencode"), exist_ok=True)
    with open(os.path.join(home, ".config", "opencode", "opencode.json"), "w") as f:
        json.dump(config, f, indent=2)
    binary = os.path.join(npm, "node_modules", "opencode-linux-x64", "bin", "opencode")
    argv = [binary, "run", "--print-logs", "-m", f"kimi/{model}",
            *(["--continue"] if again else []), prompt]
    call = first_answer(kind, ("read", "bash"), "filePath", workdir)
    replies = [{"text": call, "when": '"filePath"'}, {"text": FINAL, "when": SECRET}]
    return argv, env, replies


CLIENTS = {"claude": claude_run, "opencode": opencode_run,
           "claude-bash": functools.partial(claude_run, kind="bash"),
           "claude-multi": functools.partial(claude_run, kind="multi"),
           "opencode-bash": functools.partial(opencode_run, kind="bash"),
           "opencode-multi": functools.partial(opencode_run, kind="multi"),
           "claude-drift": functools.partial(claude_run, kind="drift"),
           "claude-websearch": functools.partial(claude_run, kind="websearch"),
           "opencode-drift": functools.partial(opencode_run, kind="drift"),
           "opencode-thinking": functools.partial(opencode_run, model="kimi-thinking"),
           "opencode-responses": functools.partial(opencode_run, sdk="@ai-sdk/openai")}
CLIENTS["claude-tui"] = functools.partial(claude_run, tui=True)
# "<client>-again": then a second run of the client continuing the session with a new prompt.
CLIENTS.update({f"{name}-again": fn for name, fn in list(CLIENTS.items())
                if name in ("claude", "opencode")})


async def run_tui(argv: list[str], env: dict, cwd: str, timeout: float):
    """The interactive client on a terminal: type the prompt, wait for the final answer on
    screen (compared without escape sequences and spaces, which the screen moves around)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(argv[0], argv, env)
    screen, loop = bytearray(), asyncio.get_running_loop()
    loop.add_reader(fd, lambda: screen.extend(_read(fd)))
    try:
        await asyncio.sleep(4)
        os.write(fd, PROMPT.encode())
        await asyncio.sleep(0.5)
        os.write(fd, b"\r")
        for _ in range(int(timeout * 5)):
            if FINAL.replace(" ", "") in flat(screen):
                break
            await asyncio.sleep(0.2)
    finally:
        loop.remove_reader(fd)
        os.kill(pid, 15)
        os.waitpid(pid, 0)
        os.close(fd)
    seen = FINAL.encode() if FINAL.replace(" ", "") in flat(screen) else b"(final text not seen)"
    return seen, bytes(screen), 0     # the raw screen is kept as the stderr file


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def flat(screen: bytes) -> str:
    escapes = r"\x1b\[[0-9;?>=]*[a-zA-Z]|\x1b\][^\x07]*\x07"
    text = re.sub(escapes, "", screen.decode("utf-8", "replace"))
    return re.sub(r"\s+", "", text)


async def run_client(argv: list[str], env: dict, cwd: str, timeout: float):
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return out, err, proc.returncode


def with_env(env: dict, extra: list[str]) -> dict:
    for item in extra:
        key, _, value = item.partition("=")
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env


async def trial(name: str, npm: str, keep: bool, timeout: float, extra: list[str],
                api_key: str | None) -> bool:
    root = tempfile.mkdtemp(prefix=f"agent-trial-{name}-")
    workdir, home = os.path.join(root, "work"), os.path.join(root, "home")
    os.makedirs(workdir)
    os.makedirs(home)
    with open(os.path.join(workdir, "note.txt"), "w") as f:
        f.write(f"The passphrase is {SECRET}.\n")
    client = CLIENTS[name]
    async with Stack(root, api_key) as stack:
        argv, env, replies = client(npm, stack, workdir, home)
        await stack.script(replies)
        run = run_tui if name.endswith("-tui") else run_client
        out, err, code = await run(argv, with_env(env, extra), workdir, timeout)
        # The tool ran: its result (the file's text) reached the emulator in a later prompt.
        proof = WEB_RESULT if name.endswith("websearch") else SECRET
        ok = FINAL in out.decode(errors="replace") and proof in json.dumps(await stack.upstream())
        if name.endswith("-again") and ok:
            argv, env, _ = client(npm, stack, workdir, home, prompt=AGAIN_PROMPT, again=True)
            await stack.script([{"text": AGAIN, "when": "again"}])
            out2, err2, code = await run_client(argv, with_env(env, extra), workdir, timeout)
            ok = AGAIN in out2.decode(errors="replace")
            out, err = out + b"\n" + out2, err + b"\n" + err2
        upstream = await stack.upstream()
    report(name, stack.recorder.records, upstream, out, err, code, root)
    if not keep and ok:
        shutil.rmtree(root)
    where = f"; records in {root}" if keep or not ok else ""
    print(f"\n== {name}: {'PASS' if ok else 'FAIL'} (exit {code}{where})")
    return ok


def report(name, records, upstream, out, err, code, root) -> None:
    print(f"== {name}: {len(records)} requests from the client")
    for i, r in enumerate(records):
        shown = {k: v for k, v in r["headers"].items()
                 if k in SHOWN_HEADERS or k.startswith(("x-", "authorization", "anthropic"))}
        print(f"-- {i}: {r['method']} {r['path']} -> {r.get('status')}")
        print(f"   headers: {json.dumps(shown)}")
        print(f"   body: {json.dumps(shape(r['body']))}")
    print(f"== upstream chat requests: {len(upstream)}; prompt sizes "
          f"{[len(json.dumps(u)) for u in upstream]}")
    with open(os.path.join(root, "upstream.json"), "w") as f:
        json.dump(upstream, f, indent=1)
    with open(os.path.join(root, "client_stdout.txt"), "wb") as f:
        f.write(out)
    with open(os.path.join(root, "client_stderr.txt"), "wb") as f:
        f.write(err)
    print(f"== client exit {code}; last stdout lines:")
    for line in out.decode(errors="replace").splitlines()[-4:]:
        print("   " + line[:400])
    if code:
        print("== stderr tail:\n" + err.decode(errors="replace")[-1500:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", nargs="?", default="all", choices=["all", *CLIENTS])
    parser.add_argument("--npm-dir", default="/tmp/agent-clients",
                        help="where the clients were installed with npm (see above)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="set (or with KEY= remove) a variable for the client")
    parser.add_argument("--gateway-key", help="[server] api_keys = [this]; the clients send "
                        f"{CLIENT_KEY!r} unless --env changes it")
    args = parser.parse_args()
    names = list(CLIENTS) if args.client == "all" else [args.client]
    if not os.path.isdir(os.path.join(args.npm_dir, "node_modules")):
        sys.exit(f"no clients installed in {args.npm_dir}: install them there with npm (see "
                 "the top of this file) or pass --npm-dir")
    results = [asyncio.run(trial(n, args.npm_dir, args.keep, args.timeout, args.env,
                                     args.gateway_key)) for n in names]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
