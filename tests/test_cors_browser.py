"""Browser clients on another origin: a page served from a second loopback server streams a
chat from the gateway in real headless Chromium (preflight, CORS headers, a streamed body)."""

import aiohttp
from aiohttp import web

from cdp import Browser
from kimi.emulator import default_text

PAGE = """<!doctype html><html><body><pre id="out">waiting</pre><script>
(async () => {
  const out = document.getElementById("out");
  try {
    const resp = await fetch("%(gateway)s/v1/chat/completions", {
      method: "POST",
      headers: {"Authorization": "Bearer sk-browser", "Content-Type": "application/json"},
      body: JSON.stringify({model: "kimi", stream: true,
                            messages: [{role: "user", content: "from a page"}]}),
    });
    const reader = resp.body.getReader(), decoder = new TextDecoder();
    let raw = "", text = "";
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      raw += decoder.decode(value, {stream: true});
    }
    for (const line of raw.split("\\n")) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6));
      if (chunk.choices.length) text += chunk.choices[0].delta.content || "";
    }
    out.textContent = "STATUS " + resp.status + " ID " + resp.headers.get("X-Request-Id")
                      + " TEXT " + text + " END";
  } catch (e) {
    out.textContent = "FAILED " + e;
  }
})();
</script></body></html>"""


async def serve_page(aiohttp_server, gateway_url: str) -> str:
    async def page(request):
        return web.Response(text=PAGE % {"gateway": gateway_url}, content_type="text/html")
    app = web.Application()
    app.router.add_get("/", page)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


async def test_a_page_on_another_origin_streams_a_chat(start_gateway, aiohttp_server, token,
                                                       tmp_path):
    gw = await start_gateway(kimi={"tokens": (token,)}, server={"api_keys": ("sk-browser",)})
    page_url = await serve_page(aiohttp_server, gw.url)
    browser = await Browser().start(tmp_path / "profile")
    try:
        await browser.goto(page_url)
        # The page writes its result once the stream has ended (or failed): wait for that,
        # however long a loaded machine takes, rather than for a fixed budget.
        dom = await browser.wait_for("document.getElementById('out').textContent !== 'waiting'"
                                     " && document.getElementById('out').textContent", 60)
    finally:
        await browser.close()
    assert f"TEXT {default_text(1, 'from a page')} END" in dom, dom
    assert "STATUS 200 ID " in dom and "ID null" not in dom, "exposed headers are readable"


async def test_preflight_and_headers_follow_the_configured_origins(start_gateway, token):
    gw = await start_gateway(kimi={"tokens": (token,)},
                             server={"cors_origins": ("https://chat.example",)})
    ask = {"Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    async with aiohttp.ClientSession() as s:
        async with s.options(gw.url + "/v1/chat/completions", headers=ask) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "https://chat.example"
            assert "authorization" in resp.headers["Access-Control-Allow-Headers"]
            assert "Access-Control-Allow-Credentials" not in resp.headers
        other = {**ask, "Origin": "https://elsewhere.example"}
        async with s.options(gw.url + "/v1/chat/completions", headers=other) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with s.get(gw.url + "/v1/models", headers={"Origin": "https://chat.example"}) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://chat.example"
        async with s.get(gw.url + "/", headers={"Origin": "https://chat.example"}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers, "API routes only"
