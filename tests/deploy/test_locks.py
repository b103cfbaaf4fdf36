"""Every deployed package installs from a lock with hashes that covers its requirements file.

The requirements files keep the ranges we accept; the locks (`./dev lock`, uv pip compile
--generate-hashes) pin what ships, so two deploys a week apart ship the same code. Packaging
reads the lock: infra/aws/package.py (pip --require-hashes), infra/gcp/build.sh and
handlers/azure_functions/build.sh (copied as the package's requirements.txt).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

LOCKS = {
    "handlers/aws_lambda.requirements.txt": "handlers/aws_lambda.requirements.lock",
    "infra/gcp/requirements.txt": "infra/gcp/requirements.lock",
    "handlers/azure_functions/requirements.txt": "handlers/azure_functions/requirements.lock",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_norm(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0]))
    return names


def pins(lock: Path) -> dict[str, list[str]]:
    """name → its hashes, from a pip-compile/uv style lock."""
    out: dict[str, list[str]] = {}
    current = None
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", line)
        if m:
            current = _norm(m.group(1))
            out[current] = []
        elif current and (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            out[current].append(h.group(1))
    return out


@pytest.mark.parametrize("reqs", sorted(LOCKS))
def test_each_lock_pins_every_requirement_with_hashes(reqs: str) -> None:
    locked = pins(ROOT / LOCKS[reqs])
    missing = requirement_names(ROOT / reqs) - set(locked)
    assert not missing, f"{LOCKS[reqs]} lacks {sorted(missing)}: run ./dev lock"
    assert all(locked.values()), [n for n, h in locked.items() if not h]
    text = (ROOT / LOCKS[reqs]).read_text()
    assert "./dev lock" in text  # the refresh command is recorded in the file itself
    assert not re.search(r"^\S+(>=|~=|<)", text, re.M)  # pins only


def test_packaging_installs_from_the_locks(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("smf_aws_package", ROOT / "infra" / "aws" / "package.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cmd = mod.pip_command("arm64", "3.13", tmp_path)
    assert cmd[-2:] == ["-r", str(ROOT / "handlers" / "aws_lambda.requirements.lock")]
    assert "--require-hashes" in cmd and "--only-binary=:all:" in cmd and "--no-deps" in cmd
    assert ["--platform", "manylinux2014_aarch64"] == cmd[cmd.index("--platform") :][:2]
    for script, lock in (("infra/gcp/build.sh", "infra/gcp/requirements.lock"),
                         ("handlers/azure_functions/build.sh", "handlers/azure_functions/requirements.lock")):  # fmt: skip
        out = tmp_path / Path(script).parent.name
        subprocess.run(["bash", str(ROOT / script), str(out)], check=True, capture_output=True, timeout=120)
        assert (out / "requirements.txt").read_text() == (ROOT / lock).read_text(), script


def test_terraform_providers_are_pinned_to_a_compatible_range() -> None:
    for cloud in ("gcp", "azure"):
        text = (ROOT / "infra" / cloud / "versions.tf").read_text()
        versions = re.findall(r'\bversion\s*=\s*"([^"]+)"', text)  # not required_version
        assert versions, cloud
        for v in versions:
            assert v.startswith("~>") or re.search(r">=\s*[\d.]+,\s*<\s*\d", v), (cloud, v)
