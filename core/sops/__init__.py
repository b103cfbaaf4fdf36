"""Native SOPS decryption: `decrypt(data, fmt, path=..., keyring=...)` returns what `sops -d`
prints, after the same MAC check sops does. No sops binary, no temporary files.

    from core.sops import KeyRing, decrypt, detect_format, is_encrypted
    ring = KeyRing(age_identities=[key_text])        # one per sync: caches data keys
    plain = decrypt(blob, detect_format(path), path=path, keyring=ring)

Formats: dotenv, yaml (multi-document), json, ini, binary. Key sources: age, AWS KMS,
GCP KMS, Azure Key Vault, HashiCorp Vault transit, PGP (gpg binary); key groups with Shamir.
"""

from __future__ import annotations

from core.sops.api import (
    decrypt,
    decrypt_tree_of,
    detect_format,
    is_encrypted,
    looks_encrypted,
    metadata_marker,
)
from core.sops.errors import (
    DataKeyError,
    FormatError,
    MacMismatchError,
    MetadataError,
    NotEncryptedError,
    SopsError,
    ValueDecryptError,
)
from core.sops.keyring import KeyRing

__all__ = [
    "DataKeyError",
    "FormatError",
    "KeyRing",
    "MacMismatchError",
    "MetadataError",
    "NotEncryptedError",
    "SopsError",
    "ValueDecryptError",
    "decrypt",
    "decrypt_tree_of",
    "detect_format",
    "is_encrypted",
    "looks_encrypted",
    "metadata_marker",
]
