"""Pure model mapping: the live catalogue decoded, names resolved, efforts chosen, and the
search results a stream carries."""

import pytest

from kimi.canonical.events import Citation
from kimi.canonical.models import ModelCatalogue
from kimi.emulator.catalog import catalog_2026_05, catalog_2026_09
from kimi.upstream.catalog import decode_catalog
from kimi.upstream.decode import StreamDecoder
from kimi.upstream.payload import build_chat_payload


def live(body) -> ModelCatalogue:
    cat = ModelCatalogue()
    cat.update(*decode_catalog(body))
    return cat


def test_2026_05_catalogue():
    specs, default = decode_catalog(catalog_2026_05())
    assert [s.id for s in specs] == ["kimi-k2d6", "kimi-k2d6-thinking", "kimi-k2d6-agent",
                                     "kimi-k2d6-agent-ultra"]
    assert default.id == "kimi-k2d6" and default.upstream_model is None
    assert [s.thinking for s in specs] == [False, True, False, False]
    assert specs[3].agent_mode == "TYPE_ULTRA" and specs[3].kimiplus_id == "ok-computer"


def test_2026_09_catalogue():
    specs, default = decode_catalog(catalog_2026_09())
    assert specs[0].id == "kimi-k3-agent"            # the default agent first
    assert default.id == "kimi-k2d6-chat" and default.scenario == "SCENARIO_CHAT"
    assert default.efforts == ("REASONING_EFFORT_NONE", "REASONING_EFFORT_LOW")
    swarm = next(s for s in specs if s.id == "kimi-k3-agent-swarm")
    assert swarm.scenario == "SCENARIO_OK_COMPUTER_SWARM" and swarm.context_length == 262144


def test_an_empty_or_odd_catalogue_is_no_catalogue():
    assert decode_catalog({}) == ([], None)
    assert decode_catalog({"availableModels": [{"key": 5}, "x", {"scenario": "S"}]}) == ([], None)


@pytest.mark.parametrize("body,name,want", [
    (None, "kimi", ("SCENARIO_K2D5", False, False, None, None)),
    (None, "kimi-research", ("SCENARIO_K2D5", True, True, None, None)),
    (None, "kimi-k1", ("SCENARIO_K2D5", True, False, None, None)),
    (None, "kimi-math", ("SCENARIO_K2D5", True, False, None, None)),
    (None, "some-other-model", ("SCENARIO_K2D5", False, False, None, None)),
    (None, "kimi-agent-swarm", ("SCENARIO_OK_COMPUTER", False, False, "ok-computer", "TYPE_ULTRA")),
    (None, "abcdefghij0123456789", ("SCENARIO_K2D5", False, False, "abcdefghij0123456789", None)),
    (catalog_2026_05(), "kimi-k2d6-thinking-search", ("SCENARIO_K2D5", True, True, None, None)),
    (catalog_2026_05(), "k2d6-agent", ("SCENARIO_OK_COMPUTER", False, False, "ok-computer",
                                       "TYPE_NORMAL")),
    (catalog_2026_09(), "kimi", ("SCENARIO_CHAT", False, False, None, None)),
    (catalog_2026_09(), "kimi-agent", ("SCENARIO_OK_COMPUTER", False, False, "ok-computer",
                                       "TYPE_NORMAL")),
    (catalog_2026_09(), "kimi-swarm", ("SCENARIO_OK_COMPUTER_SWARM", False, False, "ok-computer",
                                       "TYPE_ULTRA")),
])
def test_names_resolve(body, name, want):
    cat = live(body) if body else ModelCatalogue()
    s = cat.resolve(name)
    assert s.id == name
    assert (s.scenario, s.thinking, s.search, s.kimiplus_id, s.agent_mode) == want


@pytest.mark.parametrize("name,thinking,effort,sent", [
    ("kimi", False, None, "REASONING_EFFORT_NONE"),
    ("kimi-thinking", True, None, "REASONING_EFFORT_LOW"),
    ("kimi", True, "high", "REASONING_EFFORT_LOW"),       # Instant offers NONE and LOW only
    ("kimi-k3-agent", True, "high", "REASONING_EFFORT_MAX"),
    ("kimi-k3-agent", True, "medium", "REASONING_EFFORT_HIGH"),
    ("kimi-k3-agent", True, "low", "REASONING_EFFORT_LOW"),
    ("kimi-k3-agent", True, None, "REASONING_EFFORT_HIGH"),
    ("kimi-k3-agent", False, None, "REASONING_EFFORT_HIGH"),   # no NONE: the entry's default
])
def test_reasoning_effort_sent(name, thinking, effort, sent):
    spec = live(catalog_2026_09()).resolve(name)
    spec.thinking, spec.effort = thinking, effort
    options = build_chat_payload(spec, "hi")["options"]
    assert options["reasoning_effort"] == sent and options["thinking"] is thinking


def test_static_models_send_no_effort_or_model():
    options = build_chat_payload(ModelCatalogue().resolve("kimi-thinking"), "hi")["options"]
    assert options == {"thinking": True}


def search_frames():
    item = {"id": "web_search:1#0", "base": {"title": "T", "url": "https://t.example"},
            "refIndex": "web_search:1#0"}
    return [
        {"op": "set", "mask": "block.tool", "block": {"id": "2", "tool": {"name": "web_search"}}},
        {"op": "set", "mask": "block.tool.contents,block.tool.status",
         "block": {"id": "2", "tool": {"contents": [{"searchResult": item}], "status": "STATUS_DONE"}}},
        {"op": "append", "mask": "message.refs.searchChunks",
         "message": {"id": "m", "refs": {"searchChunks": [item, {**item, "refIndex": "web_search:1#1",
                                                                 "base": {"url": "https://u.example"}}]}}},
        {"op": "append", "mask": "block.search.webPages",
         "block": {"id": "3", "search": {"webPages": [{"title": "Old", "url": "https://o.example"}]}}},
    ]


def test_search_results_become_citations_once_each():
    dec = StreamDecoder()
    out = [ev for f in search_frames() for ev in dec.decode(f)]
    cites = [(c.ref, c.url, c.title) for c in out if type(c) is Citation]
    assert cites == [("web_search:1#0", "https://t.example", "T"),
                     ("web_search:1#1", "https://u.example", ""),
                     ("webpage:https://o.example", "https://o.example", "Old")]


def test_moderation_status_is_content_filter_with_a_message():
    dec = StreamDecoder()
    dec.decode({"op": "set", "mask": "message.status",
                "message": {"id": "m", "status": "MESSAGE_STATUS_BLOCKED"}})
    assert dec.finish_reason == "content_filter" and "moderation" in dec.finish_message


def test_catalogues_with_proto_field_names_decode_the_same():
    from kimi.emulator.spelling import spelled
    for catalog in (catalog_2026_05(), catalog_2026_09()):
        snake = spelled(catalog, "snake")
        assert "available_models" in snake
        assert decode_catalog(snake) == decode_catalog(catalog)
