"""Our HTTP surface: routes, auth and errors shaped the OpenAI way with real statuses."""

import aiohttp
import openai
import pytest


async def raw(method, url, **kw):
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, **kw) as resp:
            body = await resp.read()
            return resp.status, resp.headers, body


async def test_ping_healthz_models(gw):
    status, _, body = await raw("GET", gw.url + "/ping")
    assert (status, body) == (200, b"pong")
    status, _, body = await raw("GET", gw.url + "/healthz")
    assert status == 200
    models = await gw.client().models.list()
    ids = [m.id for m in models.data]
    for name in ("kimi", "kimi-search", "kimi-silent", "kimi-k2", "kimi-k2-thinking"):
        assert name in ids


def error_of(body):
    import orjson
    err = orjson.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.mark.parametrize("body,param", [
    (b"{not json", None),
    (b"[]", None),
    (b"", None),
    (b'{"model": "kimi"}', "messages"),
    (b'{"model": "kimi", "messages": []}', "messages"),
    (b'{"model": 5, "messages": [{"role":"user","content":"x"}]}', "model"),
    (b'{"model": "kimi", "messages": [{"role":"wizard","content":"x"}]}', "messages[0].role"),
    (b'{"model": "kimi", "messages": [{"role":"user","content":5}]}', "messages[0].content"),
    (b'{"model": "kimi", "messages": [{"role":"user","content":[{"type":"text"}]}]}', "messages[0].content[0].text"),
    (b'{"model": "kimi", "stream": "yes", "messages": [{"role":"user","content":"x"}]}', "stream"),
])
async def test_bad_requests_are_400_naming_the_field(gw, emu, body, param):
    status, headers, out = await raw("POST", gw.url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    assert status == 400
    err = error_of(out)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert emu.state.chat_requests == [], "nothing may be sent upstream for a bad request"


async def test_unknown_route_and_wrong_method(gw):
    status, _, body = await raw("GET", gw.url + "/v1/nothing")
    assert status == 404 and error_of(body)["type"] == "not_found_error"
    status, headers, body = await raw("GET", gw.url + "/v1/chat/completions")
    assert status == 405 and "POST" in headers["Allow"]
    error_of(body)


async def test_oversized_body_is_413(start_gateway, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"max_body_mb": 1})
    status, _, body = await raw("POST", gw.url + "/v1/chat/completions", data=b"x" * (2 * 1024 * 1024))
    assert status == 413
    error_of(body)


async def test_no_credentials_is_401(start_gateway):
    gw = await start_gateway()
    status, _, body = await raw("POST", gw.url + "/v1/chat/completions",
                                json={"model": "kimi", "messages": [{"role": "user", "content": "x"}]})
    assert status == 401 and error_of(body)["code"] == "missing_token"


async def test_api_keys_are_required_when_configured(start_gateway, token, emu):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-one", "sk-two")})
    msgs = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.AuthenticationError):
        await gw.client(api_key="sk-wrong").chat.completions.create(model="kimi", messages=msgs)
    with pytest.raises(openai.AuthenticationError):
        await gw.client(api_key=token).chat.completions.create(model="kimi", messages=msgs)
    r = await gw.client(api_key="sk-two").chat.completions.create(model="kimi", messages=msgs)
    assert r.choices[0].message.content
    assert len(emu.state.chat_requests) == 1


async def test_server_tokens_with_any_client_key(gw):
    r = await gw.client(api_key="sk-anything").chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content


async def test_one_model(gw):
    m = await gw.client().models.retrieve("kimi-thinking")
    assert m.id == "kimi-thinking"
    with pytest.raises(openai.NotFoundError):
        await gw.client().models.retrieve("no-such-model")
