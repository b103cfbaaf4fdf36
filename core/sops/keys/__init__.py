"""Master-key sources: one module per key type, all behind one interface.

A source is a function `decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes` that returns the
data key (or the Shamir share) held in `ref.enc`, or raises KeySourceError naming the key.
Every SDK is imported inside its module's decrypt function, so importing core.sops costs
nothing cloud-wise; a function that only uses age never loads boto3 or google-cloud.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef

# key type (as in the sops metadata and SOPS_DECRYPTION_ORDER) -> module under core.sops.keys
SOURCES = {
    "age": "age",
    "pgp": "pgp",
    "kms": "awskms",
    "gcp_kms": "gcpkms",
    "azure_kv": "azkv",
    "hc_vault": "hcvault",
}

DecryptFn = Callable[["MasterKeyRef", "KeyRing"], bytes]


def source_for(key_type: str) -> DecryptFn:
    mod = SOURCES.get(key_type)
    if mod is None:
        raise KeySourceError(f"{key_type}: key type not supported by this decryptor")
    return importlib.import_module(f"core.sops.keys.{mod}").decrypt
