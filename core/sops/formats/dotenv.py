"""dotenv store: `KEY=value` lines, `#` comments, metadata as flattened `sops_*` keys."""

from __future__ import annotations

from typing import Any

from core.sops.cipher import Comment
from core.sops.errors import FormatError, MetadataError
from core.sops.gotypes import val_to_string
from core.sops.metadata import unflatten
from core.sops.tree import Branch

PREFIX = "sops_"


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def load_plain(data: bytes) -> Branch:
    branch = Branch()
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line:
            continue
        if line[:1] == b"#":
            branch.append((Comment(_text(line[1:])), None))
            continue
        pos = line.find(b"=")
        if pos == -1:
            raise FormatError("invalid dotenv input line", line=lineno)
        branch.append((_text(line[:pos]), _text(line[pos + 1 :]).replace("\\n", "\n")))
    return branch


def split_metadata(branch: Branch) -> tuple[Branch, dict[str, str] | None]:
    body = Branch()
    flat: dict[str, str] = {}
    for k, v in branch:
        if isinstance(k, str) and k.startswith(PREFIX):
            name = k[len(PREFIX) :]
            if name in flat:
                raise MetadataError(f"sops metadata field {name} is defined twice", field=k)
            flat[name] = v
        else:
            body.append((k, v))
    return body, flat or None


def load(data: bytes) -> tuple[list[Branch], dict[str, Any] | None]:
    body, flat = split_metadata(load_plain(data))
    if flat is None:
        return [body], None
    return [body], unflatten(flat)


def has_metadata(data: bytes) -> bool:
    """A `sops_mac=` line (sops writes the metadata keys last, sorted)."""
    return data.startswith(b"sops_mac=") or b"\nsops_mac=" in data


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def emit(branches: list[Branch]) -> bytes:
    out: list[bytes] = []
    for k, v in branches[0]:
        if isinstance(v, (Branch, list)):
            raise FormatError(f"cannot use complex value in dotenv file; offending key {k}")
        if isinstance(k, Comment):
            out.append(b"#" + _enc(k.value) + b"\n")
            continue
        if isinstance(v, str):
            val = _enc(v.replace("\n", "\\n"))
        elif isinstance(v, bytes):
            val = v.replace(b"\n", b"\\n")  # as sops: binary data stays on one line
        else:
            val = _enc(val_to_string(v))
        out.append(_enc(k) + b"=" + val + b"\n")
    return b"".join(out)
