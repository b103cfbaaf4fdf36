"""GCP Cloud KMS and Azure Key Vault master keys, against wire-level fakes driven by the real
SDK clients (google-cloud-kms over REST, azure-keyvault-keys over HTTPS).

sops 3.11 has no endpoint override for these two services, so it cannot encrypt against a
fake. The files are therefore built in sops' exact format: the real sops binary encrypts the
tree for an age key, then the key block is swapped for a `gcp_kms` / `azure_kv` entry that
wraps the same data key through the fake (Cloud KMS Encrypt / RSA-OAEP-256). The MAC and
values stay sops' own; the decrypted output is compared with `sops -d` of the age version.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pyrage
import pytest
import yaml

from core.sops import DataKeyError, KeyRing, decrypt
from tests.fakes.azure_key_vault_keys import OAEP256, FakeKeyVaultWithKeys, b64url
from tests.fakes.gcp_kms import FakeCloudKMS
from tests.sops.conftest import AgeKey, Sops

PLAIN = "db:\n  password: cloud-secret-value\n  port: 5432\nnote_unencrypted: hi\n"
RID = "projects/demo/locations/global/keyRings/sops/cryptoKeys/main"


def _data_key(data: bytes, key: AgeKey) -> bytes:
    md = yaml.safe_load(data)["sops"]
    return pyrage.decrypt(md["age"][0]["enc"].encode(), [pyrage.x25519.Identity.from_str(key.secret)])


def _swap_key_block(data: bytes, block: str) -> bytes:
    """Replace the `age:` list under `sops:` by `block` (already indented by 4)."""
    lines = data.decode().split("\n")
    start = lines.index("sops:")
    out, skip = lines[: start + 1], False
    for ln in lines[start + 1 :]:
        if ln.startswith("    age:"):
            skip = True
            out.append(block.rstrip("\n"))
            continue
        if skip and (ln.startswith("        ") or ln.startswith("    -")):
            continue
        skip = False
        out.append(ln)
    return "\n".join(out).encode()


@pytest.fixture(scope="module")
def gcp() -> Iterator[FakeCloudKMS]:
    fake = FakeCloudKMS().start()
    fake.create_key(RID)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def akv() -> Iterator[FakeKeyVaultWithKeys]:
    fake = FakeKeyVaultWithKeys().start()
    fake.create_rsa_key("sops-key")
    yield fake
    fake.stop()


def test_gcp_kms(sops: Sops, age_keys: list[AgeKey], gcp: FakeCloudKMS) -> None:
    src = sops.encrypt("g.yaml", PLAIN, recipients=[age_keys[0]])
    wrapped = gcp.client().encrypt(request={"name": RID, "plaintext": _data_key(src, age_keys[0])}).ciphertext
    block = (
        "    gcp_kms:\n"
        f"        - resource_id: {RID}\n"
        '          created_at: "2026-01-01T00:00:00Z"\n'
        f"          enc: {base64.b64encode(wrapped).decode()}\n"
    )
    data = _swap_key_block(src, block)
    assert b"age:" not in data and b"gcp_kms:" in data
    theirs = sops.decrypt("g.yaml", src, keys=[age_keys[0]])
    ring = KeyRing(env={}, gcp_kms_client_factory=gcp.client)
    ours = decrypt(data, "yaml", path="g.yaml", keyring=ring)
    assert yaml.safe_load(ours) == yaml.safe_load(theirs.out)
    decrypt(data, "yaml", path="g.yaml", keyring=ring)
    assert gcp.calls[("decrypt", RID)] == 1  # once per sync


def test_gcp_kms_unknown_key_is_named(sops: Sops, age_keys: list[AgeKey], gcp: FakeCloudKMS) -> None:
    src = sops.encrypt("g.yaml", PLAIN, recipients=[age_keys[0]])
    other = RID.replace("main", "missing")
    block = f'    gcp_kms:\n        - resource_id: {other}\n          created_at: "2026-01-01T00:00:00Z"\n          enc: AAAA\n'
    data = _swap_key_block(src, block)
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, "yaml", path="g.yaml", keyring=KeyRing(env={}, gcp_kms_client_factory=gcp.client))
    assert other in str(ei.value) and "NotFound" in str(ei.value)


def test_azure_key_vault(sops: Sops, age_keys: list[AgeKey], akv: FakeKeyVaultWithKeys) -> None:
    name, version = "sops-key", "0123456789abcdef0123456789abcdef"
    src = sops.encrypt("a.yaml", PLAIN, recipients=[age_keys[0]])
    enc = b64url(akv.public_key(name, version).encrypt(_data_key(src, age_keys[0]), OAEP256))
    block = (
        "    azure_kv:\n"
        f"        - vault_url: {akv.url}\n"
        f"          name: {name}\n"
        f"          version: {version}\n"
        '          created_at: "2026-01-01T00:00:00Z"\n'
        f"          enc: {enc}\n"
    )
    data = _swap_key_block(src, block)
    theirs = sops.decrypt("a.yaml", src, keys=[age_keys[0]])
    ring = KeyRing(
        env={},
        azure_credential=akv.credential(),
        azure_client_kwargs={"connection_verify": str(akv.cert_path), "verify_challenge_resource": False},
    )
    ours = decrypt(data, "yaml", path="a.yaml", keyring=ring)
    assert yaml.safe_load(ours) == yaml.safe_load(theirs.out)
    assert akv.calls[("POST", "/keys/{name}/{version}/decrypt")] == 1
    # a wrong token is refused by the vault and reported without the token
    bad = KeyRing(
        env={},
        azure_credential=type(akv.credential())("not-the-token-value"),
        azure_client_kwargs={"connection_verify": str(akv.cert_path), "verify_challenge_resource": False},
    )
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, "yaml", path="a.yaml", keyring=bad)
    assert "not-the-token-value" not in str(ei.value) and name in str(ei.value)


def test_gcp_kms_oauth_token_and_endpoint_from_env(sops: Sops, age_keys: list[AgeKey]) -> None:
    """GOOGLE_OAUTH_ACCESS_TOKEN (as sops reads it) and SOPS_GCP_KMS_ENDPOINT, no injection."""
    fake = FakeCloudKMS(token="ya29.test-token").start()
    try:
        fake.create_key(RID)
        src = sops.encrypt("g.env", "A=cloud-secret-value\n", recipients=[age_keys[0]])
        md_key = _data_key_dotenv(src, age_keys[0])
        tok_client = fake.client_with_token("ya29.test-token")
        wrapped = tok_client.encrypt(request={"name": RID, "plaintext": md_key}).ciphertext
        lines = [ln for ln in src.decode().split("\n") if not ln.startswith("sops_age__")]
        lines.insert(-1, f"sops_gcp_kms__list_0__map_resource_id={RID}")
        lines.insert(-1, "sops_gcp_kms__list_0__map_created_at=2026-01-01T00:00:00Z")
        lines.insert(-1, f"sops_gcp_kms__list_0__map_enc={base64.b64encode(wrapped).decode()}")
        data = "\n".join(lines).encode()
        env = {"SOPS_GCP_KMS_ENDPOINT": fake.endpoint, "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.test-token"}
        assert decrypt(data, "dotenv", path="g.env", keyring=KeyRing(env=env)) == b"A=cloud-secret-value\n"
        env["GOOGLE_OAUTH_ACCESS_TOKEN"] = "ya29.wrong"
        with pytest.raises(DataKeyError) as ei:
            decrypt(data, "dotenv", path="g.env", keyring=KeyRing(env=env))
        assert "ya29.wrong" not in str(ei.value)
    finally:
        fake.stop()


def _data_key_dotenv(data: bytes, key: AgeKey) -> bytes:
    enc = next(ln for ln in data.decode().split("\n") if ln.startswith("sops_age__list_0__map_enc="))
    armored = enc.split("=", 1)[1].replace("\\n", "\n")
    return pyrage.decrypt(armored.encode(), [pyrage.x25519.Identity.from_str(key.secret)])
