"""PGP: sops encrypts to a key in a throwaway GnuPG home; we decrypt through the gpg binary."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
import yaml

from core.sops import DataKeyError, KeyRing, decrypt
from tests.sops.conftest import Sops

GPG = shutil.which("gpg")
pytestmark = pytest.mark.skipif(GPG is None, reason="no gpg binary on this machine")


@pytest.fixture(scope="module")
def gnupg() -> Iterator[tuple[str, str]]:
    home = tempfile.mkdtemp(prefix="gpg", dir="/tmp")  # short path: gpg-agent socket limit
    env = {"GNUPGHOME": home, "PATH": "/usr/bin:/bin"}

    def gpg(*args: str) -> str:
        return subprocess.run(
            [GPG, "--batch", "--passphrase", "", *args], env=env, capture_output=True, check=True, text=True
        ).stdout

    gpg("--quick-gen-key", "sops test <sops@example.invalid>", "ed25519", "cert", "never")
    fp = next(
        ln.split(":")[9] for ln in gpg("--list-keys", "--with-colons").splitlines() if ln.startswith("fpr")
    )
    gpg("--quick-add-key", fp, "cv25519", "encr", "never")
    yield home, fp
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def test_pgp_roundtrip(sops: Sops, gnupg: tuple[str, str]) -> None:
    home, fp = gnupg
    env = {"GNUPGHOME": home}
    data = sops.encrypt("p.yaml", "db:\n  password: pgp-secret-value\n", args=["--pgp", fp], env=env)
    assert b"fp: " + fp.encode() in data
    theirs = sops.decrypt("p.yaml", data, env=env)
    assert theirs.rc == 0
    ours = decrypt(
        data, "yaml", path="p.yaml", keyring=KeyRing(env={"GNUPGHOME": home, "PATH": "/usr/bin:/bin"})
    )
    assert yaml.safe_load(ours) == yaml.safe_load(theirs.out)


def test_pgp_missing_binary_names_the_key(sops: Sops, gnupg: tuple[str, str]) -> None:
    home, fp = gnupg
    data = sops.encrypt("p.env", "A=pgp-secret-value\n", args=["--pgp", fp], env={"GNUPGHOME": home})
    ring = KeyRing(env={"GNUPGHOME": home, "PATH": "/nonexistent"})
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, "dotenv", path="p.env", keyring=ring)
    assert "no gpg binary found" in str(ei.value) and fp in str(ei.value)
