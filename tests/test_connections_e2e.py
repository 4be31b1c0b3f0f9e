"""Connections: idle and slow ones are let go soon; requests the HTTP parser refuses get an
OpenAI-shaped JSON error and are logged in one line, and neither quotes their bytes."""

import asyncio

import orjson



async def raw_connection(gw):
    host, port = gw.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def closed_within(reader, seconds) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except ConnectionError:
        return True         # closed by the server while we were still writing
    except TimeoutError:
        return False


async def test_idle_and_slow_connections_are_released(start_gateway, token):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"idle_connection_seconds": 1})
    loop = asyncio.get_running_loop()
    idle_r, idle_w = await raw_connection(gw)                 # sends nothing at all
    slow_r, slow_w = await raw_connection(gw)                 # a head that never ends
    slow_w.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    t0 = loop.time()
    for _ in range(4):
        await asyncio.sleep(0.4)
        try:
            slow_w.write(b"X-Slow: 1\r\n")
            await slow_w.drain()
        except ConnectionError:
            break           # already let go
    assert await closed_within(idle_r, 3) and await closed_within(slow_r, 3)
    assert loop.time() - t0 < 5
    idle_w.close()


async def test_a_request_the_parser_refuses_is_logged_without_its_bytes(gw, caplog):
    reader, writer = await raw_connection(gw)
    secret = "sk-" + "SECRET" * 2000                       # longer than a header may be
    writer.write(f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\r\n"
                 .encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.split(b" ")[1] == b"400"
    assert b"content-type: application/json" in head.lower()
    error = orjson.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "malformed_http_request"
    assert "longer than the gateway accepts" in error["message"]
    assert b"SECRET" not in answer and "SECRETSECRET" not in caplog.text
    assert any("malformed HTTP request" in r.getMessage() for r in caplog.records)


async def test_bad_chunking_gets_a_json_error(gw, caplog):
    reader, writer = await raw_connection(gw)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"zz-SECRET-CHUNK\r\n{}\r\n0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.split(b" ")[1] == b"400"
    assert orjson.loads(body)["error"]["code"] == "malformed_http_request"
    assert b"SECRET-CHUNK" not in answer and "SECRET-CHUNK" not in caplog.text
