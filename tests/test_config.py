"""Config loading: defaults, TOML, environment overrides, and one clear line per mistake."""

import subprocess
import sys
from pathlib import Path

import pytest

from kimi.config import ConfigError, load_config
from kimi.emulator import mint_access_token

T1, T2 = mint_access_token("u1"), mint_access_token("u2")

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return str(p)


def test_example_config_is_valid_and_documents_every_key():
    cfg = load_config(str(ROOT / "config.example.toml"), env={})
    assert cfg.kimi.base_url == "https://www.kimi.com"
    assert cfg.kimi.auth_url == "https://auth.kimi.com"
    text = (ROOT / "config.example.toml").read_text()
    import dataclasses
    for section in ("server", "kimi", "pool", "store", "files", "coordination"):
        for f in dataclasses.fields(getattr(cfg, section)):
            assert f"{f.name} =" in text, f"[{section}] {f.name} is not in config.example.toml"


def test_values_and_env_overrides(tmp_path):
    path = write(tmp_path, f'[server]\nport = 9000\napi_keys = ["k1"]\n[kimi]\ntokens = ["{T1}"]\n[store]\npath = "x.db"\n')
    cfg = load_config(path, env={"KIMI_TOKENS": f"{T1}, {T2}", "PORT": "9100"})
    assert cfg.server.port == 9100
    assert cfg.server.api_keys == ("k1",)
    assert cfg.kimi.tokens == (T1, T2)
    assert cfg.store.path == "x.db"


@pytest.mark.parametrize("text,words", [
    ("[server]\nprot = 1\n", "[server] prot"),
    ("[servr]\nport = 1\n", "[servr]"),
    ("[server]\nport = \"80\"\n", "[server] port must be int"),
    ("[kimi]\ntokens = \"abc\"\n", "[kimi] tokens must be a list of strings"),
    ("[kimi]\ndelete_chats = 1\n", "[kimi] delete_chats must be bool"),
    ("[server\n", "not valid TOML"),
    ("[server]\nport = 99999\n", "[server] port must be between 1 and 65535"),
    ("[server]\nkeepalive_seconds = 0\n", "[server] keepalive_seconds must be more than 0"),
    ("[pool]\nqueue_timeout_seconds = -5\n", "[pool] queue_timeout_seconds must be more than 0"),
    ("[store]\noverflow = \"rotat\"\n", "[store] overflow must be one of error, rotate"),
    ("[server]\nlog_level = \"loud\"\n", "[server] log_level must be one of"),
    ("[kimi]\nbase_url = \"www.kimi.com\"\n", "[kimi] base_url must be an http(s) URL"),
    ("[kimi]\nauth_url = \"ftp://auth.kimi.com\"\n", "[kimi] auth_url must be an http(s) URL"),
    ("[files]\nallow_hosts = [\"ok.example\", \"http://x/\"]\n", "[files] allow_hosts[1] must be"),
    ("[files]\nallow_hosts = [\"*.example.com\"]\n", "[files] allow_hosts[0] must be"),
    ("[kimi]\ntokens = [\"not-a-jwt\"]\n", "[kimi] tokens[0] is not a Kimi token"),
    (f"[kimi]\ntokens = [\"{T1}\", \"Bearer {T2}\"]\n", "remove the 'Bearer ' prefix"),
    ("[kimi]\ntokens = [\"eyJhbGc.bm90IGpzb24.x\"]\n", "[kimi] tokens[0] is not a Kimi token"),
    ("[server]\ncors_origins = [\"chat.example.com\"]\n", "[server] cors_origins[0] must be"),
    ("[server]\ncors_origins = [\"https://a.example/path\"]\n", "[server] cors_origins[0] must be"),
    ("[store]\nurl = \"mysql://u:pw@db/kimi\"\n", "[store] url must be a postgresql:// URL"),
    ("[store]\nurl = \"postgresql://u:pw@db:5432x/kimi\"\n", "[store] url must be a postgresql://"),
    ("[coordination]\nredis_url = \"redis://:pw@cache:six/0\"\n",
     "[coordination] redis_url must be a redis:// URL"),
])
def test_mistakes_name_the_key(tmp_path, text, words):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), env={})
    assert words in str(e.value) and "pw" not in str(e.value)


def test_unreadable_file():
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("/nonexistent/config.toml", env={})


def test_bad_env_value():
    with pytest.raises(ConfigError, match="PORT"):
        load_config(None, env={"PORT": "eighty"})


def test_startup_stops_with_one_line(tmp_path):
    path = write(tmp_path, "[server]\nprot = 1\n")
    proc = subprocess.run([sys.executable, str(ROOT / "gateway.py"), "-c", path],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "[server] prot" in proc.stderr


def test_check_config(tmp_path):
    path = write(tmp_path, f'[kimi]\ntokens = ["{T1}", "{T2}"]\n[files]\nallow_hosts = ["10.0.0.0/8", "files.example.com"]\n')
    proc = subprocess.run([sys.executable, str(ROOT / "gateway.py"), "-c", path, "--check-config"],
                          capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "2 account(s)" in proc.stdout
