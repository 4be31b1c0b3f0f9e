"""The Dockerfile, checked without a Docker engine: hadolint, the rules the issue sets, and the
image's own file layout, environment and HEALTHCHECK run for real on this machine."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path


from system_tools import free_port, get, launch, require

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def args_of(word: str) -> list[str]:
    return [rest for w, rest in instructions() if w == word]


def image_env() -> dict[str, str]:
    env = {}
    for rest in args_of("ENV"):
        for key, value in re.findall(r"(\w+)=(\S+)", rest):
            env[key] = value
    return env


def test_hadolint_passes():
    # The strictest threshold: even style notes fail.
    proc = subprocess.run([require("hadolint"), "--failure-threshold", "style",
                           str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_is_a_slim_python_pinned_by_exact_tag_or_digest():
    [base] = args_of("FROM")
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?|"
                        r"python(:[\w.-]+)?@sha256:[0-9a-f]{64}", base), base


def test_runs_as_a_non_root_user_with_the_store_on_a_volume():
    users = args_of("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    volumes = [v for rest in args_of("VOLUME") for v in json.loads(rest)]
    store = image_env()["STORE_PATH"]
    assert str(Path(store).parent) in volumes


def test_installs_exactly_what_the_readme_installs():
    install = "pip install --require-hashes -r requirements.lock"
    assert install in README
    runs = [r for r in args_of("RUN") if "pip install" in r]
    assert len(runs) == 1 and runs[0].endswith(install), runs
    assert not [r for r in args_of("RUN") if re.search(r"\bpip3? install\b(?!.*--require-hashes)", r)]


def test_dockerignore_keeps_secrets_and_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ("config.toml", "*.sqlite3*", ".git", ".venv"):
        assert entry in ignored


def test_compose_uses_the_image_volume_and_loopback_port():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "build: ." in compose and ":/data" in compose
    assert '"127.0.0.1:8000:8000"' in compose


def copy_image_layout(dest: Path) -> Path:
    """What the Dockerfile COPYs, into WORKDIR, and nothing else."""
    [workdir] = args_of("WORKDIR")
    app = dest / workdir.lstrip("/")
    app.mkdir(parents=True)
    for rest in args_of("COPY"):
        *sources, target = rest.split()
        for src in sources:
            path = ROOT / src
            to = app / target
            if path.is_dir():
                shutil.copytree(path, to, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, to if not to.is_dir() else to / path.name)
    return app


async def test_the_image_layout_starts_and_its_healthcheck_passes(tmp_path):
    app = copy_image_layout(tmp_path / "image")
    port = free_port()
    env = {**image_env(), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
           "HOST": "127.0.0.1", "PORT": str(port), "STORE_PATH": str(tmp_path / "s.sqlite3")}
    gw = await launch(env=env, cwd=app, script=str(app / "gateway.py"))
    try:
        assert gw.url == f"http://127.0.0.1:{port}"
        assert (await get(gw.url + "/"))[0] == 200, "the homepage template is in the image"
        check = _healthcheck_command()
        proc = subprocess.run(check, env=env, capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    finally:
        code, _ = await gw.stop()
    assert code == 0
    proc = subprocess.run(check, env=env, capture_output=True, timeout=30)
    assert proc.returncode != 0, "the healthcheck must fail when the gateway is down"


def _healthcheck_command() -> list[str]:
    [rest] = args_of("HEALTHCHECK")
    command = json.loads(rest.split(" CMD ", 1)[1])
    assert "/healthz" in " ".join(command)
    assert command[0] == "python"
    return [sys.executable, *command[1:]]
