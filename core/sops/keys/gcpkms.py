"""GCP Cloud KMS master keys (google-cloud-kms): Decrypt(name=resource_id, ciphertext)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef


def _client(ring: KeyRing) -> Any:
    def make() -> Any:
        if ring.gcp_kms_client_factory is not None:
            return ring.gcp_kms_client_factory()
        from google.cloud import kms

        opts = None
        endpoint = ring.env.get("SOPS_GCP_KMS_ENDPOINT")
        if endpoint:
            opts = {"api_endpoint": endpoint}
        return kms.KeyManagementServiceClient(client_options=opts)

    return ring.cached_client(("gcp_kms",), make)


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    rid = str(ref.get("resource_id"))
    try:
        blob = base64.b64decode(ref.enc, validate=True)
    except (binascii.Error, ValueError):
        raise KeySourceError(f"GCP KMS key {rid}: error base64-decoding encrypted data key") from None
    try:
        resp = _client(ring).decrypt(request={"name": rid, "ciphertext": blob})
    except Exception as exc:  # noqa: BLE001 - google.api_core errors
        raise KeySourceError(
            f"GCP KMS key {rid}: failed to decrypt sops data key ({type(exc).__name__})"
        ) from None
    return bytes(resp.plaintext)
