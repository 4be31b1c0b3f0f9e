"""/metrics, /healthz and /readyz against a live gateway and emulator."""

import asyncio
import time

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kimi.emulator import Fault, Reply, mint_access_token

HELLO = [{"role": "user", "content": "Hello"}]
CHAT = "POST /v1/chat/completions"


async def get(url, **kw):
    async with aiohttp.ClientSession() as s:
        async with s.get(url, **kw) as resp:
            return resp.status, resp.headers, await resp.text()


async def scrape(gw) -> dict:
    """{(sample name, sorted label items): value} from the gateway's /metrics."""
    status, headers, text = await get(gw.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_requests_by_route_model_status_and_latency_histograms(gw):
    client = gw.client()
    await client.chat.completions.create(model="kimi", messages=HELLO)
    stream = await client.chat.completions.create(model="kimi-thinking", messages=HELLO, stream=True)
    [c async for c in stream]
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="kimi", messages=[])
    await get(gw.url + "/v1/nothing/at/all")
    m = await scrape(gw)
    total = "kimi_gateway_requests_total"
    assert value(m, total, route=CHAT, model="kimi", status="200") == 1
    assert value(m, total, route=CHAT, model="kimi-thinking", status="200") == 1
    assert value(m, total, route=CHAT, model="-", status="400") == 1, "no model decoded"
    assert value(m, total, route="GET unmatched", model="-", status="404") == 1
    ttft = "kimi_gateway_time_to_first_token_seconds_count"
    assert value(m, ttft, route=CHAT, model="kimi") == 1
    assert value(m, ttft, route=CHAT, model="kimi-thinking") == 1
    duration = "kimi_gateway_request_duration_seconds_count"
    assert value(m, duration, route=CHAT, status="200") == 2


async def test_model_label_is_bounded(gw):
    await gw.client().chat.completions.create(model="my-own-name-" + "x" * 40, messages=HELLO)
    m = await scrape(gw)
    assert value(m, "kimi_gateway_requests_total", route=CHAT, model="other", status="200") == 1


async def test_upstream_errors_by_class_pre_stream_and_in_band(gw, emu):
    emu.state.replies.append(Reply(fault=Fault("http", status=503, code="unavailable")))
    with pytest.raises(openai.APIStatusError) as e:
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    pre_code = e.value.body["code"]
    gw.service.pool.accounts[0].cooldown_until = 0     # end the cooldown the 503 started
    emu.state.replies.append(Reply(fault=Fault("error", after=2, code="internal")))
    stream = await gw.client().chat.completions.create(model="kimi", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as e:
        [c async for c in stream]
    m = await scrape(gw)
    errors = {dict(labels)["code"]: (dict(labels)["error_class"], v) for (name, labels), v in m.items()
              if name == "kimi_gateway_upstream_errors_total"}
    assert errors[pre_code][1] == 1 and errors[pre_code][0].startswith("Upstream")
    in_band = [code for code in errors if code != pre_code]
    assert len(in_band) == 1 and errors[in_band[0]][1] == 1
    assert value(m, "kimi_gateway_requests_total", route=CHAT, model="kimi", status="200") == 1


async def test_client_mistakes_are_not_upstream_errors(gw):
    with pytest.raises(openai.BadRequestError):
        await gw.client().chat.completions.create(model="kimi", messages=[])
    m = await scrape(gw)
    assert not [k for k in m if k[0] == "kimi_gateway_upstream_errors_total"]


async def test_account_gauges_by_alias_follow_the_pool(gw, emu):
    alias = gw.service.pool.accounts[0].alias
    m = await scrape(gw)
    assert value(m, "kimi_gateway_account_in_flight", account=alias) == 0
    assert value(m, "kimi_gateway_account_state", account=alias, state="healthy") == 1
    assert value(m, "kimi_gateway_accounts", state="healthy") == 1

    emu.state.replies.append(Reply(pause=1.0))
    task = asyncio.create_task(gw.client().chat.completions.create(model="kimi", messages=HELLO))
    for _ in range(100):
        if emu.state.active_streams:
            break
        await asyncio.sleep(0.02)
    m = await scrape(gw)
    assert value(m, "kimi_gateway_account_in_flight", account=alias) == 1
    await task

    emu.state.revoked_subs.add("user-1")
    with pytest.raises(openai.APIStatusError):
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    m = await scrape(gw)
    assert value(m, "kimi_gateway_account_state", account=alias, state="dead") == 1
    assert value(m, "kimi_gateway_account_state", account=alias, state="healthy") == 0
    assert value(m, "kimi_gateway_accounts", state="dead") == 1
    assert "user-1" not in str(m) and gw.config.kimi.tokens[0] not in str(m)


async def test_refresh_counter_counts_real_refreshes(start_gateway, emu):
    gw = await start_gateway(kimi={"tokens": (emu.state.issue_refresh_token("user-r"),)})
    await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    m = await scrape(gw)
    assert value(m, "kimi_gateway_token_refreshes_total") == emu.state.refresh_calls == 1
    account = gw.service.pool.accounts[0]
    await gw.service.upstream.tokens.refresh(account)
    m = await scrape(gw)
    assert value(m, "kimi_gateway_token_refreshes_total") == 2


async def test_each_app_has_its_own_registry(start_gateway, token):
    one = await start_gateway(kimi={"tokens": (token,)})
    two = await start_gateway(kimi={"tokens": (token,)})
    await one.client().chat.completions.create(model="kimi", messages=HELLO)
    assert value(await scrape(one), "kimi_gateway_requests_total", route=CHAT, model="kimi",
                 status="200") == 1
    assert value(await scrape(two), "kimi_gateway_requests_total", route=CHAT, model="kimi",
                 status="200") == 0


async def test_healthz_is_alive_even_when_no_account_is_usable(gw):
    gw.service.pool.accounts[0].mark_dead("test")
    status, _, _ = await get(gw.url + "/healthz")
    assert status == 200


async def test_readyz_follows_account_usability(gw, emu):
    status, _, body = await get(gw.url + "/readyz")
    assert status == 200 and '"usable_accounts": 1' in body
    account = gw.service.pool.accounts[0]
    account.cool_down(60, "test")
    status, _, body = await get(gw.url + "/readyz")
    assert status == 503 and '"cooling": 1' in body
    account.cooldown_until = time.time() - 1          # the cooldown is over
    assert (await get(gw.url + "/readyz"))[0] == 200
    emu.state.revoked_subs.add("user-1")
    with pytest.raises(openai.APIStatusError):
        await gw.client().chat.completions.create(model="kimi", messages=HELLO)
    status, _, body = await get(gw.url + "/readyz")
    assert status == 503 and '"dead": 1' in body


async def test_readyz_in_pass_through_mode_is_ready(start_gateway):
    gw = await start_gateway()
    status, _, body = await get(gw.url + "/readyz")
    assert status == 200 and "pass-through" in body


async def test_readyz_with_one_of_two_accounts_dead(start_gateway):
    gw = await start_gateway(kimi={"tokens": (mint_access_token("a"), mint_access_token("b"))})
    gw.service.pool.accounts[0].mark_dead("test")
    status, _, body = await get(gw.url + "/readyz")
    assert status == 200 and '"usable_accounts": 1' in body


async def test_a_finished_cooldown_counts_as_healthy_everywhere(gw):
    account = gw.service.pool.accounts[0]
    account.cool_down(60, "test")
    m = await scrape(gw)
    assert value(m, "kimi_gateway_account_state", account=account.alias, state="cooling") == 1
    account.cooldown_until = time.time() - 1
    m = await scrape(gw)
    assert value(m, "kimi_gateway_account_state", account=account.alias, state="healthy") == 1
    assert value(m, "kimi_gateway_accounts", state="cooling") == 0
    _, _, page = await get(gw.url + "/")
    assert '<b id="healthy">1</b>' in page and '<b id="cooling">0</b>' in page
