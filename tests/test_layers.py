"""The layers import only downwards (reference: architecture.md, "dependency direction"):
a dialect never imports another one, the canonical model and the tool emulation are pure,
the chat layer knows no wire shape, the upstream knows no dialect."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).parent.parent / "kimi"

# package -> the kimi packages it must not import
RULES = {
    "canonical": {"api", "web", "chat", "upstream", "store", "tools", "emulator", "usage"},
    "tools": {"api", "web", "chat", "upstream", "store", "emulator"},
    "chat": {"api", "web", "emulator"},
    "upstream": {"api", "web", "chat", "tools", "emulator"},
    "store": {"api", "web", "chat", "upstream", "tools", "emulator"},
    "api": {"upstream", "store", "emulator"},
    "web": {"upstream", "store", "emulator", "api"},
}


def kimi_imports(path: pathlib.Path) -> set[str]:
    """The top-level kimi packages a module imports (absolute or relative)."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[:len(parts) - node.level]
                target = base + tuple((node.module or "").split(".")) if node.module else base
            else:
                target = tuple((node.module or "").split("."))
            names = [target] if node.module else [base + (a.name,) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [tuple(a.name.split(".")) for a in node.names]
        else:
            continue
        found |= {n[1] for n in names if len(n) > 1 and n[0] == "kimi"}
    return found


def modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RULES))
def test_layer_imports_only_downwards(package):
    bad = {str(p.relative_to(ROOT)): sorted(kimi_imports(p) & RULES[package])
           for p in modules(package)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_a_dialect_never_imports_another():
    dialects = [d.name for d in (ROOT / "api").iterdir() if d.is_dir() and d.name != "__pycache__"]
    for d in dialects:
        for path in modules(f"api/{d}"):
            text = path.read_text()
            for other in dialects:
                if other != d:
                    assert f"api.{other}" not in text and f"..{other}" not in text, (path, other)


def test_the_emulator_imports_nothing_of_the_gateway():
    for path in modules("emulator"):
        assert kimi_imports(path) <= {"emulator"}, path
