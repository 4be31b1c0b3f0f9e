"""The operator console in a real headless Chromium: log in with the admin key, add an account
from the emulator and see it healthy, create a key and chat with it, see the request in the
traffic list and the chart, revoke the key and see the next request refused. Screenshots of
every page at desktop and phone widths land in tests/artifacts/."""

import json
from pathlib import Path

import openai
import pytest

from cdp import Browser
from kimi.emulator import mint_access_token

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
ADMIN = "admin-key-for-browser-tests-42"
HELLO = [{"role": "user", "content": "a prompt from the browser test"}]
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture
async def browser(tmp_path):
    b = await Browser().start(tmp_path / "profile")
    yield b
    await b.close()
    assert not b.console_errors, b.console_errors


async def shoot(browser: Browser, page: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name, width in WIDTHS.items():
        data = await browser.screenshot(ARTIFACTS / f"console-{page}-{name}.png", width)
        assert data.startswith(b"\x89PNG") and len(data) > 8_000, "a blank page compresses to less"
    await browser.send("Emulation.clearDeviceMetricsOverride")


async def text_of(browser: Browser, selector: str) -> str:
    return await browser.eval(f"document.querySelector({json.dumps(selector)}).innerText")


async def open_tab(browser: Browser, tab: str) -> None:
    await browser.click(f'#tabs a[data-tab="{tab}"]')
    await browser.wait_for(f"document.body.dataset.loaded === '{tab}'")


async def log_in(browser: Browser, url: str) -> None:
    await browser.goto(url + "/admin")
    await shoot(browser, "login")
    await browser.type_into("#key", ADMIN)
    await browser.click("#login button")
    await browser.wait_for("document.body.dataset.loaded === 'accounts'")


async def test_operator_walkthrough(start_gateway, browser):
    gw = await start_gateway(admin={"key": ADMIN})          # no account: pass-through mode
    await log_in(browser, gw.url)
    assert "No server account" in await text_of(browser, "#account-table")

    token = mint_access_token("user-browser")
    await browser.type_into("#token", token)
    await browser.click("#add-account button")
    await browser.wait_for("!!document.querySelector('#account-table .badge.healthy')")
    row = await text_of(browser, "#account-table tbody")
    assert "console" in row and "acct-" in row and token not in await browser.eval(
        "document.documentElement.outerHTML")
    await shoot(browser, "accounts")

    await open_tab(browser, "keys")
    await browser.type_into("#key-name", "browser-test")
    await browser.click("#add-key button")
    secret = await browser.wait_for("document.querySelector('#secret-value').textContent")
    assert secret.startswith("sk-kg-")
    await browser.wait_for("document.querySelector('#key-table').innerText.includes('browser-test')")
    await shoot(browser, "keys")

    client = gw.client(secret)
    r = await client.chat.completions.create(model="kimi", messages=HELLO)
    assert r.choices[0].message.content
    await client.post("/chat/completions/notes-1", cast_to=object,
                      body={"model": "kimi", "messages": HELLO})

    await open_tab(browser, "traffic")
    await browser.wait_for("document.querySelector('#traffic-table').innerText.includes('browser-test')")
    rows = await text_of(browser, "#traffic-table tbody")
    assert "kimi" in rows and "openai" in rows and "200" in rows
    assert HELLO[0]["content"] not in await browser.eval("document.documentElement.outerHTML")
    assert int(await browser.eval("document.querySelector('#chart-requests').dataset.total")) >= 2
    assert await browser.eval("document.querySelectorAll('#chart-requests rect.bar').length") >= 1
    assert await browser.eval("document.querySelectorAll('#chart-ttft path.line').length") == 3
    await shoot(browser, "traffic")

    await open_tab(browser, "conversations")
    assert "browser-test" in await text_of(browser, "#scope-table")
    await browser.click("#scope-table td.actions button")
    await browser.wait_for("document.querySelector('#conversation-table').innerText.includes('notes-1')")
    await shoot(browser, "conversations")

    await open_tab(browser, "keys")
    await browser.click("#key-table td.actions button.danger")      # confirm() is answered OK
    await browser.wait_for("!!document.querySelector('#key-table .badge.revoked')")
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="kimi", messages=HELLO)
    await open_tab(browser, "traffic")
    await browser.wait_for("document.querySelector('#traffic-table').innerText.includes('401')")
