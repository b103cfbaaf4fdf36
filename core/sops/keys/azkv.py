"""Azure Key Vault keys (azure-keyvault-keys): RSA-OAEP-256 unwrap of the data key.

`enc` is base64 RawURLEncoding (URL-safe, no padding). The credential is the caller's
(KeyRing(azure_credential=...)) or azure-identity's DefaultAzureCredential.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef


def _credential(ring: KeyRing) -> Any:
    def make() -> Any:
        if ring.azure_credential is not None:
            return ring.azure_credential
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    return ring.cached_client(("azure_credential",), make)


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    key_id = f"{str(ref.get('vault_url')).rstrip('/')}/keys/{ref.get('name')}/{ref.get('version')}"
    enc = ref.enc
    try:
        blob = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4))
    except (binascii.Error, ValueError):
        raise KeySourceError(f"Azure Key Vault key {key_id}: error decoding encrypted data key") from None
    try:
        from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm

        client = ring.cached_client(
            ("azure_kv", key_id),
            lambda: CryptographyClient(key_id, credential=_credential(ring), **ring.azure_client_kwargs),
        )
        result = client.decrypt(EncryptionAlgorithm.rsa_oaep_256, blob)
    except Exception as exc:  # noqa: BLE001 - azure.core errors
        raise KeySourceError(
            f"Azure Key Vault key {key_id}: failed to decrypt sops data key ({type(exc).__name__})"
        ) from None
    return bytes(result.plaintext)
