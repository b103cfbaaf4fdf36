"""HashiCorp Vault transit: the real sops binary encrypts against tests/fakes/vault_transit.py
over loopback HTTP; we decrypt through the same fake with urllib."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.sops import DataKeyError, KeyRing, decrypt
from tests.fakes.vault_transit import FakeVaultTransit
from tests.sops.conftest import Sops
from tests.support.leakcheck import LeakCheck


@pytest.fixture(scope="module")
def vault() -> Iterator[FakeVaultTransit]:
    fake = FakeVaultTransit().start()
    yield fake
    fake.stop()


def _encrypt(sops: Sops, vault: FakeVaultTransit, name: str, plain: str) -> bytes:
    vault.create_key("sops")
    uri = f"{vault.url}/v1/transit/keys/sops"
    return sops.encrypt(name, plain, args=["--hc-vault-transit", uri], env={"VAULT_TOKEN": vault.token})


def test_vault_roundtrip(sops: Sops, vault: FakeVaultTransit) -> None:
    data = _encrypt(sops, vault, "v.env", "DB=vault-secret-value\nX_unencrypted=1\n")
    assert b"sops_hc_vault__list_0__map_vault_address=" + vault.url.encode() in data
    theirs = sops.decrypt("v.env", data, env={"VAULT_TOKEN": vault.token})
    assert theirs.rc == 0
    ring = KeyRing(env={"VAULT_TOKEN": vault.token})
    before = vault.calls[("POST", "decrypt", "sops")]
    assert decrypt(data, "dotenv", path="v.env", keyring=ring) == theirs.out
    decrypt(data, "dotenv", path="v.env", keyring=ring)
    assert vault.calls[("POST", "decrypt", "sops")] == before + 1  # cached for the sync


def test_vault_bad_token(sops: Sops, vault: FakeVaultTransit) -> None:
    data = _encrypt(sops, vault, "v.yaml", "a: vault-secret-value\n")
    theirs = sops.decrypt("v.yaml", data, env={"VAULT_TOKEN": "wrong"})
    assert theirs.rc == 128
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, "yaml", path="v.yaml", keyring=KeyRing(env={"VAULT_TOKEN": "wrong-token-value"}))
    assert "HTTP 403" in str(ei.value) and "v.yaml" in str(ei.value)
    LeakCheck(["wrong-token-value", vault.token]).scan(str(ei.value))
