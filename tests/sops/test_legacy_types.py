"""`type:bytes`, which the Go encrypter never writes but its decrypter still lists: crafted here
with the file's own data key and a MAC recomputed independently (SHA-512 over the values).

sops 3.11 itself panics on such a value ("hash of unhashable type []uint8", exit 2: its IV
stash uses the plaintext as a map key), so the check is against the recomputed MAC and the
known plaintext rather than against `sops -d`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pyrage
import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.sops import KeyRing, MacMismatchError, decrypt
from tests.sops.conftest import AgeKey, Sops


def _enc(key: bytes, plain: bytes, aad: str, dtype: str) -> str:
    iv = os.urandom(32)
    ct = AESGCM(key).encrypt(iv, plain, aad.encode())
    b = base64.b64encode
    return f"ENC[AES256_GCM,data:{b(ct[:-16]).decode()},iv:{b(iv).decode()},tag:{b(ct[-16:]).decode()},type:{dtype}]"


def _craft(sops: Sops, key: AgeKey, fix_mac: bool) -> bytes:
    src = sops.encrypt("l.yaml", "a: placeholder\nb: plain-b\n", recipients=[key])
    md = yaml.safe_load(src)["sops"]
    dk = pyrage.decrypt(md["age"][0]["enc"].encode(), [pyrage.x25519.Identity.from_str(key.secret)])
    raw = b"legacy \x00 bytes \xff"
    text = src.decode()
    text = re.sub(r"^a: .*$", "a: " + _enc(dk, raw, "a:", "bytes"), text, count=1, flags=re.M)
    if fix_mac:
        mac = hashlib.sha512(raw + b"plain-b").hexdigest().upper()
        lm = md["lastmodified"]
        text = re.sub(
            r"^    mac: .*$", "    mac: " + _enc(dk, mac.encode(), lm, "str"), text, count=1, flags=re.M
        )
    return text.encode()


def test_bytes_type(sops: Sops, age_keys: list[AgeKey]) -> None:
    data = _craft(sops, age_keys[0], fix_mac=True)
    theirs = sops.decrypt("l.yaml", data, keys=[age_keys[0]])
    assert theirs.rc == 2 and b"unhashable" in theirs.err  # sops 3.11 panics
    ring = KeyRing(age_identities=[age_keys[0].secret], env={})
    out = decrypt(data, "yaml", path="l.yaml", keyring=ring, output_type="dotenv")
    assert out == b"a=legacy \x00 bytes \xff\nb=plain-b\n"
    assert yaml.safe_load(decrypt(data, "yaml", path="l.yaml", keyring=ring)) == {
        "a": b"legacy \x00 bytes \xff",
        "b": "plain-b",
    }


def test_bytes_type_with_stale_mac_is_rejected(sops: Sops, age_keys: list[AgeKey]) -> None:
    data = _craft(sops, age_keys[0], fix_mac=False)
    with pytest.raises(MacMismatchError):
        decrypt(data, "yaml", path="l.yaml", keyring=KeyRing(age_identities=[age_keys[0].secret], env={}))
