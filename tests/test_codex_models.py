"""Codex CLI's model metadata (`GET /v1/models?client_version=...`): every entry carries the
fields Codex 0.169.0 requires to parse it (found by serving the real binary trimmed entries:
one missing or null field and Codex drops the whole answer, warns "Model metadata ... not
found" and offers its fallback tools), with the values that give the full tool set."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from kimi.api.responses.codex import INSTRUCTIONS, models_body
from kimi.canonical.models import MODELS, ModelCatalogue

EFFORTS = {"none", "minimal", "low", "medium", "high", "xhigh"}


def _levels(v):
    return bool(v) and all(set(lv) == {"effort", "description"} and lv["effort"] in EFFORTS
                           and isinstance(lv["description"], str) for lv in v)


# field -> what Codex 0.169.0 accepts there (each one required, none may be null)
REQUIRED = {
    "slug": lambda v: isinstance(v, str) and v != "",
    "display_name": lambda v: isinstance(v, str),
    "supported_reasoning_levels": _levels,
    "shell_type": lambda v: v in {"default", "local", "unified_exec", "disabled",
                                  "shell_command"},
    "visibility": lambda v: v in {"list", "hide", "none"},
    "supported_in_api": lambda v: isinstance(v, bool),
    "priority": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "model_messages": lambda v: isinstance(v.get("instructions_template"), str),
    "support_verbosity": lambda v: isinstance(v, bool),
    "truncation_policy": lambda v: v["mode"] in {"bytes", "tokens"} and isinstance(v["limit"],
                                                                                     int),
    "experimental_supported_tools": lambda v: isinstance(v, list),
}
# field -> the value that picks the tools of Codex's classic GPT-5 family
TOOLS = {
    "apply_patch_tool_type": "freeform",         # the freeform apply_patch tool
    "shell_type": "shell_command",
    "supports_parallel_tool_calls": True,
    "input_modalities": ["text", "image"],       # view_image
    "support_verbosity": False,                  # no text.verbosity Kimi would ignore
    "visibility": "list",                        # in Codex's /model picker
}


def check_entry(entry: dict) -> None:
    for field, ok in REQUIRED.items():
        assert field in entry and entry[field] is not None and ok(entry[field]), field
    for field, value in TOOLS.items():
        assert entry[field] == value, field
    assert entry["model_messages"]["instructions_template"] == INSTRUCTIONS


def test_every_catalogue_name_has_an_entry_codex_parses():
    specs = ModelCatalogue().list()
    body = models_body(specs)
    assert list(body) == ["models"]
    assert [m["slug"] for m in body["models"]] == [name for name, _ in MODELS]
    for i, entry in enumerate(body["models"]):
        check_entry(entry)
        assert entry["priority"] == i          # Codex sorts by it: the catalogue's order
        assert entry["context_window"] == specs[i].context_length


@pytest.mark.parametrize("name,default", [("kimi", "none"), ("kimi-thinking", "medium"),
                                          ("kimi-k2-thinking-search", "medium")])
def test_the_default_effort_follows_the_name(name, default):
    """Codex sends the default as reasoning.effort: none keeps thinking off, as the name does."""
    spec = ModelCatalogue().resolve(name)
    assert models_body([spec])["models"][0]["default_reasoning_level"] == default


def test_the_instructions_teach_the_patch_format():
    for marker in ("apply_patch", "*** Begin Patch", "*** Update File: ", "*** End Patch"):
        assert marker in INSTRUCTIONS


# The request Codex 0.169.0 makes (captured from the real binary, the key from its auth command)
CODEX_HEADERS = {"Authorization": "Bearer placeholder", "originator": "codex_exec",
                 "User-Agent": "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm",
                 "Accept": "*/*"}


async def live_catalogue(gw) -> None:
    from kimi.web.keys import CATALOGUE
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while gw.app[CATALOGUE].source == "static" and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert gw.app[CATALOGUE].source == "live"


async def test_codex_gets_metadata_where_the_openai_sdk_gets_a_list(gw):
    await live_catalogue(gw)
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/models?client_version=0.169.0",
                         headers=CODEX_HEADERS) as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            codex = await resp.json()
        async with s.get(gw.url + "/v1/models") as resp:
            listed = await resp.json()
        async with s.get(gw.url + "/v1/models/kimi-thinking?client_version=0.169.0",
                         headers=CODEX_HEADERS) as resp:
            one = await resp.json()
        async with s.get(gw.url + "/v1/models/nope?client_version=0.169.0",
                         headers=CODEX_HEADERS) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "model_not_found"
    assert listed["object"] == "list"
    assert [m["slug"] for m in codex["models"]] == [m["id"] for m in listed["data"]]
    for entry in codex["models"]:
        check_entry(entry)
    assert one == next(m for m in codex["models"] if m["slug"] == "kimi-thinking")
    live = next(m for m in codex["models"] if m["slug"] == "kimi-k2d6")     # Kimi's own
    assert live["context_window"] > 0
