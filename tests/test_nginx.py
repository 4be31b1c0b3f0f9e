"""deploy/nginx.conf, run by a real nginx in front of a real gateway: streams pass through
chunk by chunk as they are produced, not in one burst when the answer is complete."""

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest

from kimi.emulator import Reply
from system_tools import free_port, require

ROOT = Path(__file__).resolve().parent.parent
SITE = (ROOT / "deploy" / "nginx.conf").read_text()
CHUNK_DELAY = 0.1
PIECES = 12

MAIN = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 64; }}
http {{
    access_log off;
    {http_extra}
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def site_for(gateway_url: str, port: int, buffering: bool = False) -> str:
    """The shipped file with only its two addresses changed (and, for the control, its
    buffering turned back on)."""
    upstream = gateway_url.removeprefix("http://")
    assert SITE.count("server 127.0.0.1:8000;") == 1 and SITE.count("listen 80;") == 1
    text = SITE.replace("server 127.0.0.1:8000;", f"server {upstream};")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    if buffering:
        assert text.count("proxy_buffering off;") == 1
        text = text.replace("proxy_buffering off;",
                            "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;")
    return text


@pytest.fixture
async def nginx(tmp_path):
    binary = require("nginx")
    procs = []

    async def start(gateway_url: str, buffering: bool = False, http_extra: str = "") -> str:
        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        (tmp_path / "site.conf").write_text(site_for(gateway_url, port, buffering))
        (tmp_path / "nginx.conf").write_text(MAIN.format(tmp=tmp_path, user=user,
                                                               http_extra=http_extra))
        proc = await asyncio.create_subprocess_exec(
            binary, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
            "-c", str(tmp_path / "nginx.conf"), stderr=asyncio.subprocess.PIPE)
        procs.append(proc)
        await _wait_for_port(port, proc, tmp_path)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _wait_for_port(port: int, proc, tmp_path) -> None:
    for _ in range(200):
        if proc.returncode is not None:
            err = (await proc.stderr.read()).decode()
            pytest.fail(f"nginx exited: {err} {(tmp_path / 'error.log').read_text()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    pytest.fail("nginx did not start listening")


async def arrival_times(gw, emu, base_url: str) -> list[float]:
    """Times at which each content chunk of a slow stream reached the client."""
    emu.state.chunk_delay = CHUNK_DELAY
    emu.state.replies.append(Reply(text="abcd" * PIECES, chunk=4))
    client = gw.client()
    client = client.with_options(base_url=base_url + "/v1")
    stream = await client.chat.completions.create(
        model="kimi", stream=True, messages=[{"role": "user", "content": "slowly"}])
    times, text = [], ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            times.append(time.monotonic())
            text += chunk.choices[0].delta.content
    assert text == "abcd" * PIECES
    return times


def largest_burst(times: list[float], window: float = CHUNK_DELAY / 4) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


# A "compress everything" http {} block, as many servers have: compression must not hold a
# stream back either.
GZIP_ALL = "gzip on; gzip_types text/event-stream; gzip_min_length 0;"


@pytest.mark.parametrize("http_extra", ["", GZIP_ALL], ids=["defaults", "gzip-everything"])
async def test_chunks_reach_the_client_one_by_one_through_nginx(gw, emu, nginx, http_extra):
    times = await arrival_times(gw, emu, await nginx(gw.url, http_extra=http_extra))
    assert len(times) == PIECES
    spread = times[-1] - times[0]
    assert spread >= 0.5 * (PIECES - 1) * CHUNK_DELAY, f"chunks bunched up: spread {spread:.3f}s"
    # A loaded machine may let two timers fire together; a buffering proxy bunches them all.
    assert largest_burst(times) <= PIECES // 4, "several chunks arrived together"


async def test_the_check_catches_a_buffering_proxy(gw, emu, nginx):
    # Control: the same nginx told to buffer (and to ignore X-Accel-Buffering), with gzip on,
    # holds the answer and delivers it in one burst, so the test above would fail on such a
    # setup. (Buffering alone still forwards each read promptly; compression of buffered
    # output is what waits for the end.)
    times = await arrival_times(gw, emu, await nginx(gw.url, buffering=True, http_extra=GZIP_ALL))
    assert largest_burst(times) >= PIECES - 1


async def test_homepage_through_nginx_shows_the_proxy_address(gw, nginx):
    url = await nginx(gw.url)
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/") as resp:
            page = await resp.text()
    assert resp.status == 200
    assert f"{url}/v1" in page
    assert gw.url not in page, "the page must show the address the visitor used"


@pytest.mark.parametrize("name", ["nginx.conf", "nginx-replicas.conf"])
def test_nginx_lets_idle_upstream_connections_go_before_the_gateway_does(name):
    """A connection nginx reuses just as the gateway closes it for idleness fails the request
    on it (a POST is not retried): nginx must keep idle ones for less time than the gateway."""
    import re

    from kimi.config import ServerConfig
    text = (ROOT / "deploy" / name).read_text()
    for upstream in re.findall(r"upstream \w+ \{(.*?)\}", text, re.S):
        if "keepalive " in upstream:
            [seconds] = re.findall(r"keepalive_timeout (\d+)s;", upstream)
            assert int(seconds) < ServerConfig().idle_connection_seconds
