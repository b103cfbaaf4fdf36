"""`python -m core decrypt FILE [--output-type T]` prints what `sops -d` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.sops.cli import main
from tests.sops.conftest import AgeKey, Sops
from tests.support.leakcheck import LeakCheck

ROOT = Path(__file__).resolve().parents[2]
DOTENV = "API_TOKEN=tok-abcdef-123456\nMULTI=a\\nb\n# note\nX_unencrypted=1\n"


@pytest.fixture
def enc_file(sops: Sops, age_keys: list[AgeKey], tmp_path: Path) -> Path:
    data = sops.encrypt("app.env", DOTENV, recipients=[age_keys[0]])
    p = tmp_path / "app.env"
    p.write_bytes(data)
    return p


def test_main_matches_sops(
    enc_file: Path, sops: Sops, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch, capfdbinary
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY", age_keys[0].secret)
    for out_type in (None, "json", "yaml"):
        argv = [str(enc_file)] + (["--output-type", out_type] if out_type else [])
        assert main(argv) == 0
        ours = capfdbinary.readouterr().out
        theirs = sops.decrypt("app.env", enc_file.read_bytes(), keys=[age_keys[0]], output_type=out_type)
        assert theirs.rc == 0
        if out_type is None:
            assert ours == theirs.out
        elif out_type == "json":
            assert json.loads(ours) == json.loads(theirs.out)
        else:
            assert yaml.safe_load(ours) == yaml.safe_load(theirs.out)


def test_main_errors_name_the_file(enc_file: Path, monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    tampered = enc_file.read_bytes().replace(b"X_unencrypted=1", b"X_unencrypted=2")
    enc_file.write_bytes(tampered)
    assert main([str(enc_file)]) == 1
    err = capfd.readouterr().err
    assert str(enc_file) in err and "Error getting data key" in err
    assert main([str(enc_file) + ".missing"]) == 1
    assert "cannot read file" in capfd.readouterr().err


def test_mac_mismatch_via_python_m_core(enc_file: Path, age_keys: list[AgeKey]) -> None:
    enc_file.write_bytes(enc_file.read_bytes().replace(b"X_unencrypted=1", b"X_unencrypted=2"))
    env = dict(os.environ, SOPS_AGE_KEY=age_keys[0].secret, PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-m", "core", "decrypt", str(enc_file)], capture_output=True, env=env, cwd=ROOT
    )
    assert res.returncode == 1
    assert b"MAC mismatch" in res.stderr and str(enc_file).encode() in res.stderr
    LeakCheck(["tok-abcdef-123456"]).scan(res.stdout, res.stderr)
    assert res.stdout == b""  # never a partial result
