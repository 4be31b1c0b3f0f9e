"""gateway.py as a user runs it: a subprocess, its banner, its overrides, its exit codes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kimi.emulator import mint_access_token
from system_tools import free_port, get, launch

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = str(ROOT / "gateway.py")


@pytest.fixture
def config_file(tmp_path):
    tokens = [mint_access_token("u1"), mint_access_token("u2")]
    path = tmp_path / "config.toml"
    # The file says one thing; the command line must win.
    path.write_text(f'[server]\nhost = "0.0.0.0"\nport = 1\nlog_level = "error"\n'
                    f'[kimi]\ntokens = {tokens!r}\n[store]\npath = "{tmp_path}/s.sqlite3"\n'
                    .replace("'", '"'))
    return path, tokens


async def test_banner_is_one_line_with_url_config_and_account_count(config_file):
    path, tokens = config_file
    port = free_port()
    gw = await launch("-c", str(path), "--host", "127.0.0.1", "--port", str(port),
                      "--log-level", "info")
    try:
        assert gw.banner.startswith("kimi-gateway ")
        assert f"listening on http://127.0.0.1:{port} " in gw.banner
        assert f"config={path}" in gw.banner and " accounts=2" in gw.banner
        assert " mode=accounts (2) " in gw.banner and " upstream=https://www.kimi.com " in gw.banner
        assert f" store={path.parent}/s.sqlite3 " in gw.banner
        assert (await get(gw.url + "/healthz"))[0] == 200, "the banner comes once listening"
        await get(gw.url + "/v1/models")
    finally:
        code, err = await gw.stop()
    assert code == 0
    assert "route='GET /v1/models'" in err, "--log-level info overrides the file's error"
    assert err.rstrip().splitlines()[-1].endswith("kimi-gateway stopped (in-flight requests "
                                                  "finished or 30s grace over)")
    assert not any(t in gw.banner + err for t in tokens), "tokens never reach the output"


async def test_log_level_from_the_file_applies_without_the_flag(config_file):
    path, _ = config_file
    gw = await launch("-c", str(path), "--host", "127.0.0.1", "--port", str(free_port()))
    try:
        await get(gw.url + "/v1/models")
    finally:
        code, err = await gw.stop()
    assert code == 0 and "route=" not in err, "log_level = error keeps request lines out"


def run(*args, timeout=30):
    return subprocess.run([sys.executable, GATEWAY, *args], capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin"})


def test_check_config_validates_and_exits_without_listening(config_file):
    path, _ = config_file
    proc = run("-c", str(path), "--host", "127.0.0.1", "--check-config")
    assert proc.returncode == 0 and "is valid (2 account(s))" in proc.stdout


def test_an_open_proxy_is_refused_unless_the_config_says_so(config_file):
    path, _ = config_file          # host 0.0.0.0, server tokens, no api_keys
    proc = run("-c", str(path), "--port", str(free_port()))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "[server] allow_open_access" in proc.stderr and "api_keys" in proc.stderr
    path.write_text(path.read_text().replace("[server]\n", "[server]\nallow_open_access = true\n"))
    proc = run("-c", str(path), "--check-config")
    assert proc.returncode == 0, proc.stderr
    keyed = path.read_text().replace("allow_open_access = true", 'api_keys = ["sk-1"]')
    path.write_text(keyed)
    assert run("-c", str(path), "--check-config").returncode == 0


@pytest.mark.parametrize("args,words", [
    (["--log-level", "loud"], "log level 'loud'"),
    (["-c", "/nonexistent.toml"], "cannot read config file"),
])
def test_mistakes_exit_2_with_one_line(args, words):
    proc = run(*args, "--check-config")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and words in proc.stderr


def test_port_in_use_is_one_line_not_a_traceback():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = run("--host", "127.0.0.1", "--port", str(s.getsockname()[1]))
    assert proc.returncode == 1
    assert "cannot listen on 127.0.0.1:" in proc.stderr and "Traceback" not in proc.stderr


def test_every_option_in_the_example_config_has_a_comment_beside_it():
    lines = (ROOT / "config.example.toml").read_text().splitlines()
    options = [line for line in lines if re.match(r"^\w+\s*=", line)]
    assert len(options) >= 15
    assert [line for line in options if "#" not in line] == []
