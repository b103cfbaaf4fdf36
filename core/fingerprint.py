"""Value fingerprints that let a run skip unchanged values without reading them.

A plain hash of a secret stored in tags would let anyone who can list metadata test guesses
of the value offline. The fingerprint is therefore an HMAC-SHA256 under a deployment secret,
over the store kind, the entry name and the value, truncated to 128 bits (32 lowercase hex
characters: fits every store's tag/label charset).

Where the key comes from, first match wins:

1. ``SMF_FINGERPRINT_KEY`` (any text; its SHA-256 is the key);
2. a key the store keeps itself (the local store; AWS ``SMF_FINGERPRINT_KEY_SECRET``);
3. **first-run bootstrap** in the cloud's own secret store: the secret named
   ``SMF_FINGERPRINT_KEY_NAME`` (default ``smf-fingerprint-key``, the one name each deploy's
   IAM allows) is read, or created holding 32 random bytes (base64) when absent, and reused
   from then on. Racing first runs converge on one key: the create is create-if-absent and a
   loser reads the winner (stores whose versions cannot be created conditionally define the
   key as the oldest version, which every racer reads alike). The stored text derives the key
   exactly as ``SMF_FINGERPRINT_KEY`` would, so a local CLI run may set that variable to the
   stored value and compute the same fingerprints.

A dry run (no apply) never creates the key: without one it plans under a throwaway key, which
is what a first run sees anyway (nothing has a fingerprint made with the real key yet).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import Any, Protocol

from core.errors import StoreError, SyncError

ENV_KEY = "SMF_FINGERPRINT_KEY"
#: Env var overriding the name of the secret the first run creates (and IAM allows).
KEY_NAME_ENV = "SMF_FINGERPRINT_KEY_NAME"
DEFAULT_KEY_NAME = "smf-fingerprint-key"
KEY_BYTES = 32


class FingerprintKeyStore(Protocol):
    """What a secret store offers for the bootstrap (AWS, GCP and Azure secret stores)."""

    kind: str

    def read_fingerprint_secret(self, name: str) -> str | None:
        """The stored key text, or None when the secret (or its first version) does not exist."""

    def create_fingerprint_secret(self, name: str, value: str) -> str:
        """Create the secret holding `value` if it is absent; return the text it holds now
        (the winner's, when another run created it first)."""


def key_name(env: dict[str, str] | None = None) -> str:
    env = env if env is not None else dict(os.environ)
    return (env.get(KEY_NAME_ENV) or "").strip() or DEFAULT_KEY_NAME


def derive(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def new_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def resolve_key(store: Any, env: dict[str, str] | None = None, *, create: bool = True) -> bytes:
    """The fingerprint key for a run whose secrets go to `store` (see the module docstring).

    `store` may also be the bytes a store keeps (or None), as older callers pass.
    """
    env = env if env is not None else dict(os.environ)
    if env.get(ENV_KEY):
        return derive(env[ENV_KEY])
    if store is None or isinstance(store, bytes):
        if store:
            return store
        raise SyncError(
            f"no fingerprint key: set {ENV_KEY} to a random secret (e.g. 32 random bytes, base64)"
        )
    kept = store.load_fingerprint_key()
    if kept:
        return kept
    if not hasattr(store, "create_fingerprint_secret"):
        raise SyncError(
            f"no fingerprint key: {store.kind} keeps none; set {ENV_KEY} to a random secret "
            "(e.g. 32 random bytes, base64) from your cloud's secret store"
        )
    return bootstrap_key(store, env, create=create)


def bootstrap_key(
    store: FingerprintKeyStore, env: dict[str, str] | None = None, *, create: bool = True
) -> bytes:
    """Read the well-known key secret, creating it on the first run (create-if-absent)."""
    name = key_name(env)
    try:
        text = store.read_fingerprint_secret(name)
        if text is None:
            if not create:
                return derive(new_key_text())  # dry run: plan under a throwaway key
            text = store.create_fingerprint_secret(name, new_key_text())
    except StoreError as exc:
        from core.stores.base import AuthError

        if isinstance(exc, AuthError) and exc.code is None:
            raise  # no credentials at all: that is the one thing to say (no grant advice)
        raise SyncError(
            f"cannot read or create the fingerprint key secret {name!r} in {store.kind} "
            f"({exc.message}). Grant this identity read (and, for the first run, create) on "
            f"exactly that secret, or set {ENV_KEY} to its value (or {KEY_NAME_ENV} to the "
            "secret that holds it)",
            field=name,
        ) from None
    if not text:
        raise SyncError(f"the fingerprint key secret {name!r} in {store.kind} is empty", field=name)
    return derive(text)


def fingerprint(key: bytes, store: str, name: str, value: str, *, disabled: bool = False) -> str:
    """`disabled` (a commented-out secret, docs/migration.md) is part of what is compared, so
    commenting a line out or back in is an update even when the value stays the same."""
    # HMAC-SHA256 of len(store)|store|len(name)|name|value, in one call: `hmac.digest` runs
    # in C, an order of magnitude faster than hmac.new + update for a sync of 100,000 keys.
    s, n = store.encode(), name.encode()
    msg = b"".join((len(s).to_bytes(4, "big"), s, len(n).to_bytes(4, "big"), n, value.encode("utf-8")))
    if disabled:
        msg += b"\x00disabled"
    return hmac.digest(key, msg, "sha256").hex()[:32]
