"""Golden files for the encoders (tests/data/*.golden): the bytes an encoder must produce.
Regenerate them with UPDATE_GOLDEN=1 after an intended change, and read the diff."""

from __future__ import annotations

import os
import pathlib

DATA = pathlib.Path(__file__).parent / "data"


def golden(name: str, data: bytes) -> None:
    path = DATA / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(data)
    assert data == path.read_bytes()
