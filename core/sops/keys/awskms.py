"""AWS KMS master keys (boto3): key ARN, encryption context, optional role and profile.

The region comes from the ARN. `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` (and the STS
variants) in the ring's environment point the clients elsewhere, e.g. at moto in tests.
"""

from __future__ import annotations

import base64
import binascii
import re
import socket
from typing import TYPE_CHECKING, Any

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef

_ARN = re.compile(r"^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$")


def _session_name() -> str:
    host = re.sub(r"[^a-zA-Z0-9=,.@-_]+", "", socket.gethostname())
    return ("sops@" + host)[:64]


def _client_kwargs(ring: KeyRing, service: str) -> dict[str, Any]:
    env = ring.env
    kw: dict[str, Any] = {}
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        kw["endpoint_url"] = endpoint
    return kw


def _session(ring: KeyRing, profile: str) -> Any:
    import boto3

    env = ring.env
    creds = {}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        creds = {
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": env.get("AWS_SESSION_TOKEN"),
        }
    if profile:
        return boto3.session.Session(profile_name=profile)
    return boto3.session.Session(**creds)


def _client(ring: KeyRing, region: str, role: str, profile: str) -> Any:
    def make() -> Any:
        session = _session(ring, profile)
        if role:
            sts = session.client("sts", region_name=region, **_client_kwargs(ring, "sts"))
            out = sts.assume_role(RoleArn=role, RoleSessionName=_session_name())
            c = out["Credentials"]
            import boto3

            session = boto3.session.Session(
                aws_access_key_id=c["AccessKeyId"],
                aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"],
            )
        return session.client("kms", region_name=region, **_client_kwargs(ring, "kms"))

    return ring.cached_client(("kms", region, role, profile), make)


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    arn = str(ref.get("arn"))
    m = _ARN.match(arn)
    if not m:
        raise KeySourceError(f"AWS KMS key {arn}: no valid ARN found")
    try:
        blob = base64.b64decode(ref.enc, validate=True)
    except (binascii.Error, ValueError):
        raise KeySourceError(f"AWS KMS key {arn}: error base64-decoding encrypted data key") from None
    context = {k: v for k, v in (ref.get("context") or ()) if v is not None}
    try:
        client = _client(ring, m.group(1), str(ref.get("role") or ""), str(ref.get("aws_profile") or ""))
        kwargs: dict[str, Any] = {"KeyId": arn, "CiphertextBlob": blob}
        if context:
            kwargs["EncryptionContext"] = context
        out = client.decrypt(**kwargs)
    except KeySourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors; keep only the error code
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        raise KeySourceError(f"AWS KMS key {arn}: failed to decrypt sops data key ({code})") from None
    return bytes(out["Plaintext"])
