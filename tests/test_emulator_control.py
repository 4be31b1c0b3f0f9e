"""bench/emulator_proc.py's control app: scripted replies and the recorded upstream requests."""

from __future__ import annotations

from bench.emulator_proc import control_app
from kimi.emulator import EmulatorState, Reply


async def test_replies_are_queued_in_order(aiohttp_client):
    state = EmulatorState()
    client = await aiohttp_client(control_app(state))
    r = await client.post("/replies", json=[{"text": "one", "think": "t", "chunk": 2},
                                            {"text": "two", "when": "result"}])
    assert r.status == 200 and (await r.json()) == {"queued": 2}
    assert list(state.replies) == [Reply(text="one", think="t", chunk=2),
                                   Reply(text="two", when="result")]


async def test_bad_replies_are_a_400_naming_the_problem(aiohttp_client):
    state = EmulatorState()
    client = await aiohttp_client(control_app(state))
    cases = [(b"{", "JSON"), (b'{"text": "x"}', "list"), (b'["x"]', "reply 0 is not"),
             (b'[{"text": 5}]', "text must be str"), (b'[{"fault": "error"}]', "unknown field"),
             (b'[{"chunk": 0}]', "at least 1"), (b'[{"chunk": true}]', "chunk must be int")]
    for raw, words in cases:
        r = await client.post("/replies", data=raw)
        assert r.status == 400, raw
        assert words in (await r.json())["error"], raw
    assert not state.replies


async def test_requests_lists_the_chat_payloads(aiohttp_client):
    state = EmulatorState()
    state.chat_requests.append({"message": {"blocks": [{"text": {"content": "hi"}}]}})
    client = await aiohttp_client(control_app(state))
    r = await client.get("/requests")
    assert (await r.json()) == state.chat_requests
