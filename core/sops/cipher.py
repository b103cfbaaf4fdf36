"""AES-256-GCM value cipher of sops (aes/cipher.go), decrypt side only.

A value is `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<t>]`; the AAD is the
colon-joined key path plus a trailing colon. The decrypted bytes are typed back by `type`.
"""

from __future__ import annotations

import base64
import binascii
import re

from core.sops.gotypes import (
    go_atoi,
    go_parse_bool,
    go_parse_float,
    parse_rfc3339,
)

ENC_RE = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]", re.S)


class Comment:
    """A comment line of the tree (sops.Comment); `value` is the text after '#'/';'."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Comment) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("Comment", self.value))

    def __repr__(self) -> str:
        return "Comment(<redacted>)"


class CipherError(Exception):
    """A value could not be parsed, authenticated or typed. Never carries the value."""


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise CipherError(f"Error base64-decoding {what}") from None


def is_enc_value(value: object) -> bool:
    return isinstance(value, str) and value.startswith("ENC[AES256_GCM,")


def decrypt_value(ciphertext: str, key: bytes, aad: str) -> object:
    """Decrypt one sops value string; returns str/bytes/int/float/bool/GoTime/Comment."""
    if ciphertext == "":
        return ""
    m = ENC_RE.match(ciphertext)
    if m is None:
        raise CipherError("value does not match sops' data format")
    data = _b64(m.group(1), "data")
    iv = _b64(m.group(2), "iv")
    tag = _b64(m.group(3), "tag")
    dtype = m.group(4)
    if len(key) not in (16, 24, 32):
        raise CipherError("invalid AES key size")
    if not iv:
        raise CipherError("invalid IV length")
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode("utf-8"))
    except (InvalidTag, ValueError):
        raise CipherError("Could not decrypt with AES_GCM") from None
    return typed(plain, dtype)


def typed(plain: bytes, dtype: str) -> object:
    if dtype == "bytes":
        return plain
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        if dtype == "str":
            return plain  # binary store: a Go string may hold any bytes
        raise CipherError(f"cannot parse value of type {dtype}") from None
    try:
        if dtype == "str":
            return text
        if dtype == "int":
            return go_atoi(text)
        if dtype == "float":
            return go_parse_float(text)
        if dtype == "bool":
            return go_parse_bool(text)
        if dtype == "time":
            t = parse_rfc3339(text)
            if t is None:
                raise ValueError("bad time")
            return t
        if dtype == "comment":
            return Comment(text)
    except ValueError:
        raise CipherError(f"cannot parse value of type {dtype}") from None
    raise CipherError("Unknown datatype")
