"""GET /: rendered by headless Chromium, self-contained, showing this server's own address and
live state, never a secret; its examples run as printed."""

import asyncio
import html
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from kimi import __version__
from kimi.emulator import default_text
from system_tools import require
from tests.test_codex_models import live_catalogue

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


async def chromium(tmp_path, *args) -> tuple[bytes, str]:
    proc = await asyncio.create_subprocess_exec(
        require("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out, err.decode()


async def fetch(url, **kw):
    async with aiohttp.ClientSession() as s:
        async with s.get(url, **kw) as resp:
            return resp.status, resp.headers, await resp.text()


async def test_chromium_renders_the_page_with_its_own_address(gw, tmp_path):
    out, log = await chromium(tmp_path, "--enable-logging=stderr", "--dump-dom", gw.url + "/")
    dom = out.decode()
    assert 'data-script="ran"' in dom, "the inline script runs under the page's CSP"
    assert "Content Security Policy" not in log, log[-2000:]
    assert f'<code class="url" id="base-url">{gw.url}/v1</code>' in dom
    assert f"curl {gw.url}/v1/chat/completions" in dom
    assert f'base_url="{gw.url}/v1"' in html.unescape(dom)
    assert f'fetch("{gw.url}/v1/chat/completions"' in html.unescape(dom)
    for client in ("NextChat", "LobeChat", "Cherry Studio", "Dify", "one-api / new-api",
                   "Claude Code", "ANTHROPIC_BASE_URL", "Cherry Studio (Anthropic)"):
        assert client in dom
    assert re.search(r'<b id="healthy">1</b>', dom) and '<b id="dead">0</b>' in dom
    assert f'<b id="version">{__version__}</b>' in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "homepage.png"
    shot.unlink(missing_ok=True)
    await chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", gw.url + "/")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000, "a blank page compresses to less"


class Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [(tag, k, v) for k, v in attrs if k in ("src", "href", "srcset", "action")]


async def test_page_loads_nothing_from_elsewhere(gw):
    status, headers, page = await fetch(gw.url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    parser = Assets()
    parser.feed(page)
    assert parser.refs == [], "no external (or any) assets: styles and script are inline"
    assert "link" not in parser.tags and "iframe" not in parser.tags
    assert "@import" not in page and "url(" not in page


async def test_page_never_shows_a_secret(start_gateway, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-secret-key",)})
    _, _, page = await fetch(gw.url + "/")
    alias = gw.service.pool.accounts[0].alias
    assert token not in page and "sk-secret-key" not in page and alias not in page
    assert "YOUR_GATEWAY_API_KEY" in page


async def test_pass_through_mode_asks_for_a_kimi_token(start_gateway):
    gw = await start_gateway()
    _, _, page = await fetch(gw.url + "/")
    assert "YOUR_KIMI_TOKEN" in page and "pass-through mode" in page


async def test_a_forged_host_header_does_not_reach_the_page(gw):
    _, _, page = await fetch(gw.url + "/", headers={"Host": 'x"><script>alert(1)</script>'})
    assert "<script>alert" not in page and "alert(1)" not in page
    assert gw.url + "/v1" in page, "falls back to the socket's own address"


async def test_proxy_scheme_is_shown(gw):
    _, _, page = await fetch(gw.url + "/", headers={"X-Forwarded-Proto": "https"})
    assert gw.url.replace("http://", "https://") + "/v1" in page


def examples(page: str) -> dict[str, str]:
    blocks = re.findall(r"<h3>([^<]+)</h3><button[^>]*>Copy</button><pre><code>(.*?)</code>",
                        page, re.S)
    return {html.unescape(title): html.unescape(code) for title, code in blocks}


async def run(*cmd, cwd=None) -> str:
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def sse_text(out: str) -> str:
    chunks = [json.loads(line[6:]) for line in out.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("title,runner,suffix", [
    ("curl", lambda path: ["bash", str(path)], ".sh"),
    ("Python (openai)", lambda path: [sys.executable, str(path)], ".py"),
    ("JavaScript (fetch, streaming)", lambda path: [require("node"), str(path)], ".mjs"),
])
async def test_examples_run_as_printed(gw, tmp_path, title, runner, suffix):
    if suffix == ".sh":
        require("curl")
    path = tmp_path / f"example{suffix}"
    path.write_text(examples((await fetch(gw.url + "/"))[2])[title])
    out = await run(*runner(path))
    text = sse_text(out) if title == "curl" else out.strip()
    assert text == default_text(1, "Hello")


async def test_the_page_lists_the_live_catalogue(gw):
    await live_catalogue(gw)
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/") as resp:
        page = await resp.text()
    assert "kimi-k2d6-thinking" in page and "kimi-thinking" in page


async def test_the_codex_settings_reach_the_responses_api(gw):
    """The config.toml shown parses, and what Codex does with it gets answers: the key from
    the auth command as a bearer token, base_url + /models?client_version=... for the model
    metadata (the freeform apply_patch tool, no fallback warning), base_url + /responses."""
    import subprocess
    import tomllib
    from tests.test_codex_models import CODEX_HEADERS, check_entry
    config = tomllib.loads(examples((await fetch(gw.url + "/"))[2])["Codex CLI"])
    provider = config["model_providers"][config["model_provider"]]
    assert provider["wire_api"] == "responses" and "env_key" not in provider
    auth = provider["auth"]
    key = subprocess.run([auth["command"], *auth["args"]], capture_output=True, text=True,
                         env={"KIMI_GATEWAY_KEY": "placeholder"}, check=True).stdout.strip()
    headers = {**CODEX_HEADERS, "Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(provider["base_url"] + "/models?client_version=0.169.0",
                         headers=headers) as resp:
            models = (await resp.json())["models"]
        async with s.post(provider["base_url"] + "/responses", headers=headers,
                          json={"model": config["model"], "input": "Hello"}) as resp:
            body = await resp.json()
    assert key == "placeholder"
    check_entry(next(m for m in models if m["slug"] == config["model"]))
    assert body["status"] == "completed"
    assert body["output"][-1]["content"][0]["text"] == default_text(1, "Hello")


async def test_an_open_gateway_says_so_on_its_page(gw):
    status, _, page = await fetch(gw.url + "/")
    assert status == 200
    assert "this gateway is open" in page and "[server] api_keys</code> is empty" in page


async def test_the_page_names_every_api_it_serves(gw):
    """A 404 sends the caller to this page for the APIs served: each dialect's route is there."""
    _, _, page = await fetch(gw.url + "/")
    footer = html.unescape(page[page.index("<footer>"):])
    for route in ("POST /v1/chat/completions", "POST /v1/chat/completions/{conversation_id}",
                  "POST /v1/messages", "POST /v1/responses", "POST /v1/completions",
                  "/v1beta", "GET /v1/models", "/v1/conversations"):
        assert route in footer, route


async def test_the_gemini_cli_settings_are_shown_for_headless_runs(gw):
    """Gemini CLI 0.61 refuses `gemini -p` with GOOGLE_GEMINI_BASE_URL alone ("Invalid auth
    method selected.") and in a folder it has not been told to trust: the page says both."""
    _, _, page = await fetch(gw.url + "/")
    card = html.unescape(page[page.index("<h3>Gemini CLI"):])
    card = card[:card.index("</table>")]
    settings = re.search(r"~/\.gemini/settings\.json.*?<code>(.*?)</code>", card, re.S)[1]
    assert json.loads(settings) == {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    assert "GEMINI_CLI_TRUST_WORKSPACE=true" in card
