"""Fixtures: a real emulator and a real gateway, each on its own loopback port, and the
official openai SDK as the client."""

from __future__ import annotations

import dataclasses
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


@pytest.fixture
async def emu(aiohttp_server):
    state = EmulatorState()
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
