"""When usage is counted: the prompt while Kimi is still answering (off the path from the
last frame to the response), the figures exactly as counting everything at the end."""

from kimi.emulator import Reply
from kimi.usage import load_counter

PROMPT = "Count me while the answer is still on its way."


async def test_the_prompt_is_counted_while_kimi_answers(gw, emu, monkeypatch):
    counter = load_counter()
    open_streams = []
    count = counter.prompt_tokens

    def watched(texts):
        open_streams.append(sum(emu.state.active_streams.values()))
        return count(texts)

    monkeypatch.setattr(counter, "prompt_tokens", watched)
    emu.state.chunk_delay = 0.01
    emu.state.replies.append(Reply(text="one two three four five six seven eight", chunk=4))
    r = await gw.client().chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": PROMPT}])
    assert open_streams == [1]          # once, with the upstream stream still open
    exact = counter.usage([PROMPT], r.choices[0].message.content, "")
    assert r.usage.prompt_tokens == exact["prompt_tokens"]
    assert r.usage.completion_tokens == exact["completion_tokens"]


async def test_a_stream_without_usage_counts_nothing(gw, emu, monkeypatch):
    counter = load_counter()
    called = []
    monkeypatch.setattr(counter, "prompt_tokens", lambda texts: called.append(1) or 0)
    monkeypatch.setattr(counter, "usage", lambda *a, **k: called.append(2) or {})
    stream = await gw.client().chat.completions.create(
        model="kimi", stream=True, messages=[{"role": "user", "content": PROMPT}])
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert called == []
