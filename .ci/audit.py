"""Audit the lock files with pip-audit and say plainly what was and was not checked.

Fails on any known vulnerability. A package the vulnerability service could not be asked
about is listed as NOT AUDITED; that fails too when AUDIT_STRICT=1 (set it where the service
is reachable), and is a loud notice otherwise, since some networks reach the package index
but not its vulnerability data.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(locks: list[str]) -> int:
    audit = Path(sys.executable).parent / "pip-audit"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        args = [str(audit), "--disable-pip", "--require-hashes", "--progress-spinner", "off",
                "-f", "json", "-o", str(report)]
        for lock in locks:
            args += ["-r", lock]
        proc = subprocess.run(args, capture_output=True, text=True)
        if not report.exists():
            print(f"pip-audit could not run: {proc.stderr.strip()[-2000:]}")
            return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
        deps = json.loads(report.read_text())["dependencies"]
    lines, code = summarize(deps, strict=os.environ.get("AUDIT_STRICT") == "1")
    print("\n".join(lines))
    return code


def summarize(deps: list[dict], strict: bool) -> tuple[list[str], int]:
    """pip-audit's JSON dependencies -> (report lines, exit code)."""
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    lines = [f"VULNERABLE {d['name']} {d.get('version')}: "
             + ", ".join(v["id"] for v in d["vulns"]) for d in vulnerable]
    lines.append(f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} locked packages "
                 f"audited, {len(vulnerable)} with known vulnerabilities")
    if skipped:
        lines.append(f"NOT AUDITED ({len(skipped)}): the vulnerability service gave no answer "
                     "for " + ", ".join(d["name"] for d in skipped))
        lines.append(f"  first reason: {skipped[0]['skip_reason']}")
    failed = bool(vulnerable) or (bool(skipped) and strict)
    return lines, 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
