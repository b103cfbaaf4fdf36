"""GCP Cloud KMS master keys (google-cloud-kms): Decrypt(name=resource_id, ciphertext).

Credentials as sops: GOOGLE_CREDENTIALS, GOOGLE_OAUTH_ACCESS_TOKEN, else Application Default
Credentials. SOPS_GCP_KMS_ENDPOINT points the client elsewhere (REST when it is http://).
"""

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

        kwargs: dict[str, Any] = {"credentials": _credentials(ring)}
        endpoint = ring.env.get("SOPS_GCP_KMS_ENDPOINT")
        if endpoint:
            kwargs["client_options"] = {"api_endpoint": endpoint}
            if endpoint.startswith("http://"):  # a local emulator/fake: REST over plain HTTP
                kwargs["transport"] = "rest"
                if kwargs["credentials"] is None:
                    from google.auth.credentials import AnonymousCredentials

                    kwargs["credentials"] = AnonymousCredentials()
        return kms.KeyManagementServiceClient(**kwargs)

    return ring.cached_client(("gcp_kms",), make)


def _credentials(ring: KeyRing) -> Any:
    """As sops: GOOGLE_CREDENTIALS (JSON, or a path to it), then GOOGLE_OAUTH_ACCESS_TOKEN,
    else None (Application Default Credentials)."""
    raw = ring.env.get("GOOGLE_CREDENTIALS", "")
    if raw:
        import json
        import os

        import google.auth

        try:
            if os.path.isfile(raw):
                with open(raw, encoding="utf-8") as fh:
                    raw = fh.read()
            creds, _ = google.auth.load_credentials_from_dict(
                json.loads(raw), scopes=["https://www.googleapis.com/auth/cloudkms"]
            )
        except Exception:  # noqa: BLE001 - never echo the credentials
            raise KeySourceError("GCP KMS: GOOGLE_CREDENTIALS could not be loaded") from None
        return creds
    token = ring.env.get("GOOGLE_OAUTH_ACCESS_TOKEN", "")
    if token:
        from google.oauth2.credentials import Credentials

        return Credentials(token)
    return None


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
