"""Value fingerprints that let a run skip unchanged values without reading them.

A plain hash of a secret stored in tags would let anyone who can list metadata test guesses
of the value offline. The fingerprint is therefore an HMAC-SHA256 under a deployment secret
(`SMF_FINGERPRINT_KEY`, or a key the store keeps, as the local store does), over the store
kind, the entry name and the value, truncated to 128 bits (32 lowercase hex characters: fits
every store's tag/label charset).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from core.errors import SyncError

ENV_KEY = "SMF_FINGERPRINT_KEY"


def resolve_key(store_key: bytes | None, env: dict[str, str] | None = None) -> bytes:
    env = env if env is not None else dict(os.environ)
    if env.get(ENV_KEY):
        return hashlib.sha256(env[ENV_KEY].encode()).digest()
    if store_key:
        return store_key
    raise SyncError(
        f"no fingerprint key: set {ENV_KEY} to a random secret (e.g. 32 random bytes, base64) "
        "from your cloud's secret store; see README 'Fingerprints'"
    )


def fingerprint(key: bytes, store: str, name: str, value: str) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (store, name):
        data = part.encode()
        mac.update(len(data).to_bytes(4, "big") + data)
    mac.update(value.encode("utf-8"))
    return mac.hexdigest()[:32]
