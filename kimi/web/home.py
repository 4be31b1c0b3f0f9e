"""GET /: what this gateway is, its live state, and how to connect a client to it.

The page is self-contained (inline CSS and script, nothing fetched from elsewhere; the CSP
header enforces it). Every example carries this server's own address as the visitor reached
it. It shows counts, never a token, an API key or an account alias.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from importlib.resources import files
from string import Template

from aiohttp import web

from .. import __version__
from ..canonical.models import MODELS
from .examples import CLIENTS, EXAMPLES, fill
from .keys import API_KEYS, CATALOGUE, CONFIG, STARTED_AT
from .status import is_usable, server_accounts, state_counts

PAGE = files(__package__).joinpath("home.html").read_text(encoding="utf-8")
TEMPLATE = Template(PAGE)


def _inline_hash(tag: str) -> str:
    # The page's one <style> and one <script> are constant, so the CSP allows exactly them.
    body = re.search(f"<{tag}>(.*?)</{tag}>", PAGE, re.S)[1]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


CSP = (f"default-src 'none'; style-src {_inline_hash('style')}; "
       f"script-src {_inline_hash('script')}; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


async def home(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    accounts = server_accounts(request.app)
    counts = state_counts(accounts)
    base = base_url(request)
    stored = request.app.get(API_KEYS)      # keys made in the console
    needs_key = bool(config.server.api_keys) or (stored is not None and stored.active)
    key, key_help = _key_guidance(needs_key, bool(accounts))
    usable = any(is_usable(a, time.time()) for a in accounts)
    page = TEMPLATE.substitute(
        version=html.escape(__version__), base=html.escape(base), key_help=key_help,
        healthy=counts["healthy"], cooling=counts["cooling"], dead=counts["dead"],
        ready="ready" if usable or not accounts else "not ready",
        mode="pass-through mode" if not accounts else f"{len(accounts)} server account(s)",
        uptime=format_uptime(time.time() - request.app[STARTED_AT]),
        models=", ".join(f"<code>{html.escape(spec.id)}</code>"
                         for spec in request.app[CATALOGUE].list()),
        examples=_examples(base, key), clients=_clients(base, key))
    return web.Response(text=page, content_type="text/html", headers={
        "Content-Security-Policy": CSP, "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


def base_url(request: web.Request) -> str:
    """This server as the visitor reached it: the Host header (nginx passes it through),
    and the scheme a TLS-terminating proxy reports. A malformed Host falls back to the
    socket's own address rather than reaching the page."""
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).lower()
    scheme = proto if proto in ("http", "https") else request.scheme
    host = request.host
    if not _HOST.match(host or ""):
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        host = f"{sock[0]}:{sock[1]}" if sock else "127.0.0.1"
    return f"{scheme}://{host}"


def _key_guidance(has_api_keys: bool, has_accounts: bool) -> tuple[str, str]:
    if has_api_keys:
        return "YOUR_GATEWAY_API_KEY", (
            "one of this gateway's API keys (<code>[server] api_keys</code>, or made in the "
            "operator console), sent as "
            "<code>Authorization: Bearer &lt;key&gt;</code>.")
    if has_accounts:
        return "anything", (
            "<strong>none is required: this gateway is open.</strong> Anyone who can reach "
            "this address uses its Kimi accounts, because <code>[server] api_keys</code> is "
            "empty; set keys before exposing it. Clients that insist on a key may send any "
            "text (each key keeps its own conversations). Sending your own Kimi token (a JWT "
            "starting with <code>eyJ</code>) uses your account instead.")
    return "YOUR_KIMI_TOKEN", (
        "your Kimi token (<code>refresh_token</code> from kimi.com's Local Storage, copied in a "
        "browser profile you then stop using for Kimi), sent as "
        "<code>Authorization: Bearer &lt;token&gt;</code>; several, comma-separated, are pooled.")


def _examples(base: str, key: str) -> str:
    out = []
    for title, template in EXAMPLES:
        code = html.escape(fill(template, base, key))
        out.append(f'<div class="example"><h3>{html.escape(title)}</h3>'
                   f'<button class="copy" type="button">Copy</button><pre><code>{code}</code>'
                   "</pre></div>")
    return "\n".join(out)


def _clients(base: str, key: str) -> str:
    models = ",".join(name for name, _ in MODELS[:5])
    out = []
    for name, where, fields in CLIENTS:
        rows = "".join(f"<tr><th>{html.escape(field)}</th><td><code>"
                       f"{html.escape(fill(value, base, key, models))}</code></td></tr>"
                       for field, value in fields)
        out.append(f'<div class="client"><h3>{html.escape(name)} <small>{html.escape(where)}'
                   f"</small></h3><table>{rows}</table></div>")
    return "\n".join(out)


def format_uptime(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
