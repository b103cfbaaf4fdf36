"""Errors raised by the SOPS decryptor.

All are `core.errors.DecryptError`, so callers can catch one type. `code` is the exit code
`sops -d` uses for the same failure (cmd/sops/codes/codes.go), so a caller can tell a MAC
mismatch (51) from a value that fails to decrypt (25) or a data key nobody could unwrap (128).
Messages name the file and a field path, never a value or key material.
"""

from __future__ import annotations

from core.errors import DecryptError


class SopsError(DecryptError):
    """Base of every SOPS failure; `code` mirrors sops' exit code."""

    code = 1


class NotEncryptedError(SopsError):
    """The file has no sops metadata (sops: 'sops metadata not found')."""

    code = 1


class MetadataError(SopsError):
    """The sops metadata block is malformed (bad lastmodified, conflicting rules, no keys)."""

    code = 1


class FormatError(SopsError):
    """The file could not be parsed in its format, or the tree cannot be emitted as requested."""

    code = 1


class DataKeyError(SopsError):
    """No key group yielded the data key (sops exit code 128)."""

    code = 128


class ValueDecryptError(SopsError):
    """A value failed AES-GCM authentication (wrong AAD, swapped or edited ciphertext)."""

    code = 25


class MacMismatchError(SopsError):
    """The MAC over the values did not match, or the MAC itself could not be decrypted."""

    code = 51


class KeySourceError(Exception):
    """One master key could not unwrap its data key; collected into a DataKeyError.

    Internal: the message names the key (ARN, recipient, fingerprint), never key material.
    """
