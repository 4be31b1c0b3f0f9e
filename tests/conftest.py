"""Fixtures: a real emulator and a real gateway, each on its own loopback port, and the
official openai SDK as the client."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import openai
import pytest

from kimi.app import create_app
from kimi.config import Config, load_config
from kimi.emulator import EmulatorState, create_app as create_emulator, mint_access_token
from kimi.web.keys import SERVICE


@dataclass
class Emu:
    state: EmulatorState
    url: str


@dataclass
class Gateway:
    url: str
    app: object
    config: Config

    @property
    def service(self):
        return self.app[SERVICE]

    def client(self, api_key: str = "unused", **kw) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, **kw)


# Everything a whole test run logged, and every secret and prompt it used: checked at the end
# of the session (see pytest_sessionfinish). Test-side bookkeeping only.
LOG_LINES: list[str] = []
LOG_FILES: list[str] = []
STATES: list[EmulatorState] = []


# The test clients' own debug logs (the anthropic SDK logs each request's options, prompt
# included): what the client process writes, not the gateway.
CLIENT_LOGGERS = ("anthropic",)


class _Capture(logging.Handler):
    def emit(self, record):
        if record.name.split(".")[0] not in CLIENT_LOGGERS:
            LOG_LINES.append(self.format(record))


@pytest.fixture(autouse=True, scope="session")
def capture_all_logs():
    handler = _Capture(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(old)


def _secrets_and_prompts() -> set[str]:
    found = set()
    for state in STATES:
        for call in state.calls:
            auth = call.headers.get("Authorization") or call.headers.get("authorization") or ""
            if auth.startswith("Bearer "):
                found.add(auth[7:])
            if isinstance(call.body, dict) and call.body.get("refresh_token"):
                found.add(call.body["refresh_token"])
        for req in state.chat_requests:
            for block in req.get("message", {}).get("blocks", []):
                text = (block.get("text") or {}).get("content") or ""
                if len(text) >= 12:
                    found.add(text)
    return {s for s in found if len(s) >= 12}


def pytest_sessionfinish(session, exitstatus):
    texts = list(LOG_LINES)
    for name in LOG_FILES:
        try:
            texts.append(open(name, encoding="utf-8", errors="replace").read())
        except OSError:
            pass
    blob = "\n".join(texts)
    leaks = [s for s in _secrets_and_prompts() if s in blob]
    if leaks:
        print(f"\nFAILED: {len(leaks)} token(s) or prompt(s) appeared in the logs of this run, "
              f"e.g. one starting {leaks[0][:6]!r}")
        session.exitstatus = 1
    elif STATES:
        print(f"\nlog check: {len(blob.splitlines())} log lines hold none of "
              f"{len(_secrets_and_prompts())} tokens/prompts used")


@pytest.fixture
async def emu(aiohttp_server):
    state = EmulatorState()
    STATES.append(state)
    server = await aiohttp_server(create_emulator(state))
    return Emu(state=state, url=str(server.make_url("")).rstrip("/"))


@pytest.fixture
def token():
    return mint_access_token("user-1")


def make_config(emu: Emu, tmp_path, **sections) -> Config:
    cfg = load_config(None, env={})
    kimi = dict(base_url=emu.url, auth_url=emu.url)
    kimi.update(sections.pop("kimi", {}))
    store = dict(path=str(tmp_path / "store.sqlite3"))
    store.update(sections.pop("store", {}))
    changes = {"kimi": dataclasses.replace(cfg.kimi, **kimi),
               "store": dataclasses.replace(cfg.store, **store)}
    for name, values in sections.items():
        changes[name] = dataclasses.replace(getattr(cfg, name), **values)
    return dataclasses.replace(cfg, **changes)


@pytest.fixture
def start_gateway(aiohttp_server, emu, tmp_path):
    async def start(**sections) -> Gateway:
        config = make_config(emu, tmp_path, **sections)
        app = create_app(config)
        server = await aiohttp_server(app)
        return Gateway(url=str(server.make_url("")).rstrip("/"), app=app, config=config)
    return start


@pytest.fixture
async def gw(start_gateway, token):
    """A gateway with one server-side account."""
    return await start_gateway(kimi={"tokens": (token,)})


from shared_servers import postgres_server, postgres_url, redis_server, redis_url  # noqa: E402,F401
