"""docker-compose.yml's `replicas` profile, run without a Docker engine: each replica service is
the image's file layout started with the image's environment and the service's own
`environment` block from the compose file, behind deploy/nginx-replicas.conf, with real
PostgreSQL and Redis. Only what Docker itself would provide is replaced: the compose hosts
`postgres` and `redis` are the test's servers, and each replica gets a port of its own."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from kimi.emulator import mint_access_token
from system_tools import free_port, launch
from test_docker import copy_image_layout, image_env
from test_replicas import ADMIN, Cluster, answer, chat, chat_as, console, until

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = (ROOT / "docker-compose.yml").read_text()


def block(text: str, start: str) -> list[str]:
    """The lines indented under the line `start` (which must occur once)."""
    lines = text.splitlines()
    [i] = [n for n, line in enumerate(lines) if line.rstrip() == start]
    indent = len(start) - len(start.lstrip())
    out = []
    for line in lines[i + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        out.append(line)
    return out


def replica_services() -> list[str]:
    return re.findall(r"^  ([\w-]+): \*replica$", COMPOSE, re.M)


def replica_environment(variables: dict[str, str]) -> dict[str, str]:
    """The `x-replica` anchor's environment, `${NAME:-default}` filled from `variables`."""
    anchor = block(COMPOSE, "x-replica: &replica")
    env = {}
    for line in block("\n".join(anchor), "  environment:"):
        key, _, value = line.strip().partition(": ")
        env[key] = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: variables.get(m[1], m[2]), value)
    return env


def service_environment(name: str) -> dict[str, str]:
    """A service's environment block, each `${NAME:-default}` as its default."""
    service = "\n".join(block(COMPOSE, f"  {name}:"))
    env = {}
    for line in block(service, "    environment:"):
        key, _, value = line.split("#")[0].strip().partition(": ")
        env[key] = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return env


def test_the_profile_wires_its_replicas_to_the_shared_servers_and_nginx():
    services = replica_services()
    assert services == ["kimi-a", "kimi-b"]
    site = (ROOT / "deploy" / "nginx-replicas.conf").read_text()
    # Every upstream block (the API's, the console's) lists the replicas.
    blocks = re.findall(r"upstream \w+ \{(.*?)\}", site, re.S)
    assert len(blocks) == 2
    assert [re.findall(r"server ([\w-]+):8000 ", b) for b in blocks] == [services] * 2
    env = replica_environment({})
    store, redis = urlsplit(env["STORE_URL"]), urlsplit(env["REDIS_URL"])
    pg = service_environment("postgres")
    assert (store.scheme, store.hostname, store.port) == ("postgresql", "postgres", 5432)
    assert (store.username, store.password, store.path) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], "/" + pg["POSTGRES_DB"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert "ALLOW_OPEN_ACCESS" not in env, "replicas listen on 0.0.0.0: they need API_KEYS"


async def test_the_replicas_profile_serves_one_conversation_from_both_replicas(
        tmp_path, emu, postgres_url, redis_url):
    key = "choose-a-key"
    env = replica_environment({"KIMI_TOKENS": mint_access_token("user-compose"),
                               "API_KEYS": key, "ADMIN_KEY": ADMIN})
    env["STORE_URL"], env["REDIS_URL"] = postgres_url, redis_url    # compose's `postgres`, `redis`
    app = copy_image_layout(tmp_path / "image")
    cluster, running = Cluster(tmp_path, emu, postgres_url, redis_url), []
    try:
        for name in replica_services():
            port = free_port()
            running.append(await launch(env={
                **image_env(), **env, "PORT": str(port), "PATH": "/usr/bin:/bin",
                "STORE_PATH": str(tmp_path / f"{name}.sqlite3"),
                "KIMI_BASE_URL": emu.url, "KIMI_AUTH_URL": emu.url},
                cwd=app, script=str(app / "gateway.py")))
            assert f"listening on http://0.0.0.0:{port}" in running[-1].banner
            cluster.urls.append(f"http://127.0.0.1:{port}")
        cluster.url = await cluster._nginx()
        a, b = cluster.urls
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            for turn, url in enumerate((a, b, cluster.url), 1):
                status, text = await chat(s, url, f"turn {turn} please", path="/conv-compose")
                assert status == 200 and answer(text).startswith(f"[turn {turn}]"), text
        async with aiohttp.ClientSession() as s:
            assert (await chat(s, cluster.url))[0] == 401
            # The console (ADMIN_KEY): a key made on one replica serves through the other.
            made = await console(s, a, "POST", "keys", {"name": "compose"}, status=201)

            async def works_on_b():
                return (await chat_as(s, b, made["secret"]))[0] == 200
            await until(works_on_b, 3.0)
        assert len({r["chat_id"] for r in emu.state.chat_requests if r.get("chat_id")}) == 1
    finally:
        await cluster.stop()
        for gw in running:
            code, err = await gw.stop()
            assert code == 0 and "Traceback" not in err, err
