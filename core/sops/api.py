"""The decrypt pipeline: load -> metadata -> data key -> walk + MAC -> emit."""

from __future__ import annotations

import importlib
import re
from typing import Any

from core.sops.cipher import CipherError, decrypt_value
from core.sops.errors import (
    FormatError,
    MacMismatchError,
    MetadataError,
    NotEncryptedError,
    SopsError,
    ValueDecryptError,
)
from core.sops.keyring import KeyRing
from core.sops.metadata import FIELDS, Metadata, check_shape, metadata_from_dict
from core.sops.tree import Branch, WalkError, decrypt_tree

# Format modules load on first use: a sync imports only the formats its files are in (a
# dotenv-only push never loads the YAML ones), which keeps them off the Lambda cold start.
_LOADERS = {
    "dotenv": "dotenv",
    "yaml": "yaml_format",
    "json": "json_format",
    "ini": "ini",
    "binary": "binary",
}
_EMITTERS = {"dotenv": "dotenv", "yaml": "yaml_emit", "json": "json_format", "ini": "ini", "binary": "binary"}
_SUFFIXES = ((".yaml", "yaml"), (".yml", "yaml"), (".json", "json"), (".env", "dotenv"), (".ini", "ini"))


def _format(module: str) -> Any:
    return importlib.import_module(f"core.sops.formats.{module}")


def detect_format(path: str) -> str:
    """sops' rule (formats.FormatForPath): by suffix, so a file named `.env` is dotenv too."""
    for suffix, fmt in _SUFFIXES:
        if path.endswith(suffix):
            return fmt
    return "binary"


def is_encrypted(data: bytes, fmt: str) -> bool:
    """Cheap check: does the file carry sops metadata with a MAC?"""
    if fmt == "dotenv":
        return _format("dotenv").has_metadata(data)
    if fmt == "ini":
        return b"[sops]" in data and (b"\nmac " in data or b"\nmac=" in data)
    if b"sops" not in data or b"mac" not in data:
        return False
    if fmt == "yaml":
        return _format("yaml_format").has_metadata(data) and b"mac:" in data
    # json and binary
    try:
        _, md = _format("json_format").load(data)
    except SopsError:
        return False
    return isinstance(md, dict) and "mac" in md


ENC_MARKER = "ENC[AES256_GCM,"
_DOTENV_METADATA = re.compile(rb"(?m)^sops_(?:%s)(?:=|__)" % "|".join(FIELDS).encode())
_JSON_METADATA = re.compile(rb'"sops"\s*:')


def looks_encrypted(data: bytes, fmt: str) -> bool:
    """Fail-closed test the sync uses: any `ENC[AES256_GCM,...]` value, or sops metadata in
    the form this format carries it, even without a MAC. Such a file is only ever decrypted;
    if its metadata is missing or broken it fails, it is never read as plaintext."""
    if ENC_MARKER.encode() in data:
        return True
    if fmt == "dotenv":
        return _DOTENV_METADATA.search(data) is not None
    if fmt == "ini":
        return b"[sops]" in data
    if fmt == "yaml":
        return _format("yaml_format").has_metadata(data)
    return _JSON_METADATA.search(data) is not None


def metadata_marker(key: str, value: str) -> bool:
    """True if a parsed plaintext entry is a remnant of sops encryption: an ENC value (also
    reached through escapes the byte test cannot see) or a metadata key (`sops`, `sops.mac`,
    `sops_lastmodified`, `sops[0]`...)."""
    if ENC_MARKER in value or ENC_MARKER in key:
        return True
    if key == "sops" or key.startswith("sops["):
        return True
    if key.startswith("sops."):
        return re.split(r"[.\[]", key[5:], maxsplit=1)[0] in FIELDS
    return key.startswith("sops_") and key[5:].split("__")[0] in FIELDS


def _load(data: bytes, fmt: str, path: str, strict: bool = False) -> tuple[list[Branch], Metadata]:
    if fmt not in _LOADERS:
        raise FormatError(f"unknown format {fmt!r}", path=path)
    try:
        branches, md_dict = _format(_LOADERS[fmt]).load(data)
    except SopsError as exc:
        raise type(exc)(exc.message, path=path, line=exc.line, field=exc.field) from None
    except (ValueError, TypeError, RecursionError) as exc:  # a malformed file, never a crash
        raise FormatError(f"cannot parse {fmt} file ({type(exc).__name__})", path=path) from None
    if md_dict is None:
        raise NotEncryptedError("sops metadata not found", path=path)
    try:
        if strict:
            check_shape(md_dict)
        md = metadata_from_dict(md_dict)
    except MetadataError as exc:
        raise MetadataError(exc.message, path=path, field=exc.field or "sops") from None
    return branches, md


def decrypt_tree_of(
    data: bytes, fmt: str, *, path: str, keyring: KeyRing, strict: bool = False
) -> list[Branch]:
    """Decrypt and MAC-check a file; return its tree (one Branch per YAML document).

    `strict` also refuses metadata whose fields are missing or retyped (`check_shape`)."""
    branches, md = _load(data, fmt, path, strict)
    key = keyring.data_key(md, path=path)
    try:
        computed = decrypt_tree(branches, md.rules, key)
    except WalkError as exc:
        field = ".".join(exc.where) or None
        if exc.kind == "value":
            raise ValueDecryptError(f"Error decrypting tree: {exc}", path=path, field=field) from None
        raise SopsError(f"Error decrypting tree: {exc}", path=path, field=field) from None
    try:
        stored: Any = decrypt_value(md.mac, key, md.last_modified.rfc3339())
    except CipherError:
        raise MacMismatchError("Cannot decrypt MAC", path=path, field="sops.mac") from None
    if stored != computed:
        raise MacMismatchError(
            "MAC mismatch: the file was modified or is corrupt", path=path, field="sops.mac"
        )
    return branches


def decrypt(
    data: bytes,
    fmt: str,
    *,
    path: str,
    keyring: KeyRing,
    output_type: str | None = None,
    strict: bool = False,
) -> bytes:
    """Return exactly what `sops -d [--output-type T]` prints for this file."""
    branches = decrypt_tree_of(data, fmt, path=path, keyring=keyring, strict=strict)
    out_fmt = output_type or fmt
    if out_fmt not in _EMITTERS:
        raise FormatError(f"unknown output type {out_fmt!r}", path=path)
    try:
        return _format(_EMITTERS[out_fmt]).emit(branches)
    except FormatError as exc:
        raise FormatError(exc.message, path=path) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise FormatError(f"cannot emit {out_fmt} output ({type(exc).__name__})", path=path) from None
