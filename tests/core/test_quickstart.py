"""The README's first quick-start command runs end to end and prints no secret value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.parsers import parse_file
from core.sops import KeyRing, decrypt, detect_format
from tests.support.leakcheck import LeakCheck

ROOT = Path(__file__).resolve().parents[2]


def example_secret_values() -> list[str]:
    key = [ln for ln in (ROOT / "examples/age-key.txt").read_text().splitlines() if ln.startswith("AGE-")]
    ring = KeyRing(age_identities=key, env={})
    values = []
    for path in (ROOT / "examples/repo").rglob("application.secrets.*"):
        rel = str(path.relative_to(ROOT))
        plain = decrypt(path.read_bytes(), detect_format(rel), path=rel, keyring=ring).decode()
        values += [item.value for item in parse_file(rel, plain)]
    return values


def test_demo_runs_end_to_end_without_leaking() -> None:
    values = example_secret_values()
    assert "example orders db password" in values  # decrypted dotenv means the plaintext's meaning
    proc = subprocess.run(
        [sys.executable, "examples/demo.py"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo OK" in proc.stdout
    assert "Summary (done): 14 created" in proc.stdout
    assert "0 created, 1 updated" in proc.stdout
    LeakCheck(values).scan(proc.stdout, proc.stderr, where="demo output")
