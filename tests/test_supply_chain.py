"""Supply-chain guard: what hid the original project's payload must not be in this tree, and
every dependency is pinned with hashes.

The original's payload hid in a line pushed off-screen by whitespace, decoded from base64 and
run with eval. So every tracked file is scanned for lines over 500 characters, long runs of
whitespace, base64 blobs and invisible or bidirectional control characters; Python files are
parsed and may not call eval/exec/compile/__import__ or decode a long literal.
"""

import ast
import base64
import configparser
import importlib.util
import os
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 500
# Blanks that push code off-screen: a long run after something on the line, or an indent
# deeper than any alignment (continuation lines here align to about 50 columns).
WHITESPACE_RUN = re.compile(r"(?<=\S)[ \t]{40,}|^[ \t]{100,}")
BLOB = re.compile(r"[A-Za-z0-9+/_-]{100,}={0,2}")
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
BANNED_CALLS = {"eval", "exec", "compile", "__import__"}
DECODERS = {"b64decode", "b32decode", "a85decode", "b85decode", "urlsafe_b64decode",
            "decodebytes", "fromhex", "unhexlify", "decompress", "loads"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=30).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", "artifacts", ".pytest_cache"}
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def is_blob(text: str) -> bool:
    # Long runs of one character class (a "-----" rule, a long identifier) are not blobs.
    return (any(c.islower() for c in text) and any(c.isupper() for c in text)
            and any(c.isdigit() for c in text))


def text_findings(text: str) -> list[str]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            out.append(f"line {n}: {len(line)} characters (over {MAX_LINE})")
        if WHITESPACE_RUN.search(line):
            out.append(f"line {n}: a run of {len(WHITESPACE_RUN.search(line)[0])} blanks")
        if any(is_blob(m) for m in BLOB.findall(line)):
            out.append(f"line {n}: a base64-like blob")
        if INVISIBLE.search(line):
            out.append(f"line {n}: an invisible or bidirectional control character")
    return out


def python_findings(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [f"line {e.lineno}: does not parse as Python"]
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == "builtins":
            name = func.attr
        if name in BANNED_CALLS:
            out.append(f"line {node.lineno}: call to {name}()")
        attr = func.attr if isinstance(func, ast.Attribute) else name
        if attr in DECODERS and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, (str, bytes)) and len(node.args[0].value) > 40:
            out.append(f"line {node.lineno}: {attr}() of a {len(node.args[0].value)}-character literal")
    return out


# The one binary file allowed: the tokenizer table, a public file whose content is pinned by
# the SHA-256 tiktoken itself uses (checked again by the gateway whenever it loads it).
KNOWN_DATA = {"kimi/usage/o200k_base.tiktoken.gz":
              "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"}


def known_data(path: Path) -> bool:
    import gzip
    import hashlib
    expected = KNOWN_DATA.get(path.relative_to(ROOT).as_posix()) if path.is_relative_to(ROOT) else None
    if expected is None:
        return False
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == expected


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}


def plain_png(data: bytes) -> bool:
    """A picture and nothing else: image chunks only, each with a good CRC, and no byte after
    the end, so that no text chunk or trailing data can carry a payload."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body, crc = data[pos + 8:pos + 8 + length], data[pos + 8 + length:pos + 12 + length]
        if kind not in IMAGE_CHUNKS or len(crc) != 4 or zlib.crc32(kind + body) != \
                int.from_bytes(crc, "big"):
            return False
        pos += 12 + length
        if kind == b"IEND":
            return pos == len(data)
    return False


def docs_picture(path: Path) -> bool:
    """The README's screenshots (docs/*.png), when they are plain pictures."""
    rel = path.relative_to(ROOT).parts if path.is_relative_to(ROOT) else ()
    return rel[:1] == ("docs",) and path.suffix == ".png" and plain_png(path.read_bytes())


def findings(path: Path) -> list[str]:
    if known_data(path) or docs_picture(path):
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return ["not UTF-8 text (binary files have no place in this tree)"]
    out = text_findings(text)
    if path.suffix == ".py":
        out += python_findings(text)
    return out


def test_the_tree_is_clean():
    files = tracked_files()
    assert len(files) > 30 and any(p.name == "service.py" for p in files)
    bad = {str(p.relative_to(ROOT)): f for p in files if (f := findings(p))}
    assert bad == {}


def test_a_screenshot_may_carry_nothing_but_its_picture():
    data = (ROOT / "docs" / "console.png").read_bytes()
    assert plain_png(data)
    text = struct.pack(">I", 7) + b"tEXtpayload" + struct.pack(">I", zlib.crc32(b"tEXtpayload"))
    hidden = [data + b"exec(...)", data[:33] + text + data[33:], data[:-1] + b"\0",
              data.replace(b"IDAT", b"IDAX", 1)]
    assert not any(plain_png(d) for d in hidden)


RANDOM_B64 = base64.b64encode(os.urandom(120)).decode()


@pytest.mark.parametrize("source,expected", [
    ("x = 1" + " " * 600, "characters (over 500)"),
    ("a = 1;" + " " * 60 + "run()", "a run of 60 blanks"),
    ("a = 1\t" + "\t" * 45, "blanks"),
    ("if x:\n" + " " * 120 + "hidden()", "a run of 120 blanks"),
    ("def f(:\n", "does not parse"),
    (f"payload = '{RANDOM_B64}'", "base64-like blob"),
    ("x = 'abc\u202edef'", "bidirectional"),
    ("eval('1 + 1')", "call to eval()"),
    ("exec(code)", "call to exec()"),
    ("compile(src, 'f', 'exec')", "call to compile()"),
    ("import builtins\nbuiltins.exec(x)", "call to exec()"),
    ("__import__('os').system('x')", "call to __import__()"),
    (f"import base64\nbase64.b64decode('{'QUJD' * 15}')", "b64decode() of a 60-character literal"),
    (f"bytes.fromhex('{'ab' * 30}')", "fromhex() of a 60-character literal"),
])
def test_the_guard_catches(tmp_path, source, expected):
    path = tmp_path / "sample.py"
    path.write_text(source)
    found = findings(path)
    assert any(expected in f for f in found), found


@pytest.mark.parametrize("source", [
    "pattern = re.compile(r'^x$')",
    "model.eval()",
    "f(a,\n" + " " * 60 + "aligned_continuation_line)",
    "line = '-' * 200",
    "rule = '" + "-" * 120 + "'",
    "name_" + "x" * 120 + " = 1",
    "sha = 'sha256:" + "0123456789abcdef" * 4 + "'",
    "base64.b64decode(data)",
])
def test_the_guard_lets_ordinary_code_pass(tmp_path, source):
    path = tmp_path / "sample.py"
    path.write_text(source)
    assert findings(path) == []


def test_binary_files_are_refused(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert findings(path) == ["not UTF-8 text (binary files have no place in this tree)"]


def lock_pins(name: str) -> dict[str, str]:
    """{package: version} from a pip-compile lock, checking each entry carries hashes."""
    pins, current, hashed = {}, None, set()
    for line in (ROOT / name).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("--"):
            continue     # comments and pip options (index and find-links lines)
        if not line.startswith(" "):
            # An extra stays on its line (`google-auth[requests]==...`): pip's hash mode
            # needs it there to count the extra's requirement as pinned.
            match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[A-Za-z0-9,._-]+\])?==([^\s\\]+) \\", line)
            assert match, f"{name}: not an exact pin: {line!r}"
            current = match[1].lower().replace("_", "-")
            pins[current] = match[2]
        elif re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line):
            hashed.add(current)
    assert set(pins) == hashed, f"{name}: entries without a hash: {set(pins) - hashed}"
    return pins


def setup_pins(key: str) -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    section = "options" if key == "install_requires" else "options.extras_require"
    lines = [line.strip() for line in cfg[section][key].splitlines() if line.strip()]
    pins = dict(line.split("==") for line in lines)
    assert all(pins.values()), f"setup.cfg {key}: every dependency is pinned with =="
    return {k.lower(): v for k, v in pins.items()}


def test_locks_pin_every_package_with_hashes_and_follow_setup_cfg():
    runtime, test = lock_pins("requirements.lock"), lock_pins("requirements-test.lock")
    for package, version in setup_pins("install_requires").items():
        assert runtime.get(package) == version and test.get(package) == version, package
    for package, version in setup_pins("test").items():
        assert test.get(package) == version, package
    for package, version in runtime.items():
        assert test[package] == version, f"{package}: the test lock runs other versions"


def test_readme_installs_with_hash_checking_and_names_every_dependency():
    readme = (ROOT / "README.md").read_text()
    assert "pip install --require-hashes -r requirements.lock" in readme
    assert "pip install --require-hashes -r requirements-test.lock" in readme
    for package in {**setup_pins("install_requires"), **setup_pins("test")}:
        assert f"`{package}`" in readme, f"README does not say why {package} is needed"


def load_audit_script():
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AUDITED = {"name": "aiohttp", "version": "3.14.5", "vulns": []}
VULNERABLE = {"name": "idna", "version": "3.6", "vulns": [{"id": "PYSEC-2024-60"}]}
UNANSWERED = {"name": "orjson", "skip_reason": "Dependency not found on PyPI"}


@pytest.mark.parametrize("deps,strict,code,words", [
    ([AUDITED], False, 0, "1 of 1 locked packages audited, 0 with"),
    ([AUDITED, VULNERABLE], False, 1, "VULNERABLE idna 3.6: PYSEC-2024-60"),
    ([AUDITED, UNANSWERED], False, 0, "NOT AUDITED (1): the vulnerability service gave no answer for orjson"),
    ([AUDITED, UNANSWERED], True, 1, "NOT AUDITED (1)"),
])
def test_ci_audit_fails_on_vulnerabilities_and_says_what_it_could_not_check(deps, strict, code,
                                                                            words):
    lines, got = load_audit_script().summarize(deps, strict)
    assert got == code and words in "\n".join(lines)
