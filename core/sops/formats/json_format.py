"""JSON store (and the binary store's JSON envelope), with Go encoding/json output."""

from __future__ import annotations

import json
from typing import Any

from core.parsers.limits import LimitError, check_json
from core.sops.cipher import Comment
from core.sops.errors import FormatError, MetadataError
from core.sops.gotypes import GoTime, format_json_float
from core.sops.tree import Branch


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


def load_plain(data: bytes) -> Branch:
    text = data.decode("utf-8", "replace")
    try:
        check_json(text)
    except LimitError as exc:
        raise FormatError(f"Error unmarshalling input json: {exc.message}", line=exc.line) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=Branch,
            parse_float=float,
            parse_int=float,  # sops 3.11 decodes every JSON number as float64
            parse_constant=_reject_constant,
        )
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise FormatError("Error unmarshalling input json", line=line) from None
    if not isinstance(value, Branch):
        raise FormatError("Expected JSON object start")
    return value


def to_plain(v: Any) -> Any:
    """Branch -> dict recursively (for the metadata block)."""
    if isinstance(v, Branch):
        return {k: to_plain(x) for k, x in v if isinstance(k, str)}
    if isinstance(v, list):
        return [to_plain(x) for x in v]
    return v


def load(data: bytes) -> tuple[list[Branch], dict[str, Any] | None]:
    branch = load_plain(data)
    md = None
    body = Branch()
    for k, v in branch:
        if k == "sops":
            if md is not None:
                raise MetadataError("sops metadata is defined twice")
            if isinstance(v, Branch):
                _reject_duplicate_keys(v)
            md = to_plain(v)
        else:
            body.append((k, v))
    return [body], md


def _reject_duplicate_keys(block: Branch) -> None:
    """encoding/json would keep the last of two equal keys; in the metadata that is never an
    accident, so it is refused (the file fails closed instead of decrypting with either)."""
    seen: set[str] = set()
    for k, _ in block:
        if k in seen:
            raise MetadataError(f"sops metadata field {k} is defined twice", field=f"sops.{k}")
        seen.add(k)


# --- Go encoding/json style output --------------------------------------------------------

_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESC.update({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def go_json_string(s: str | bytes) -> str:
    """encoding/json string: each byte that is not valid UTF-8 becomes the escape backslash-ufffd
    (Go's encodeState.string), while a real U+FFFD in the text stays a raw character."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "surrogateescape")
    out = ['"']
    for c in s:
        e = _ESC.get(c)
        if e is not None:
            out.append(e)
        elif "\udc80" <= c <= "\udcff":  # an undecodable byte kept by surrogateescape
            out.append("\\ufffd")
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        try:
            return format_json_float(v)
        except ValueError:
            raise FormatError("json: unsupported float value (NaN or Inf)") from None
    if isinstance(v, GoTime):
        return '"' + v.rfc3339nano() + '"'
    if isinstance(v, bytes):
        return go_json_string(v)
    if isinstance(v, str):
        return go_json_string(v)
    raise FormatError("cannot encode value as JSON")


def _encode(v: Any, indent: str, level: int, out: list[str]) -> None:
    pad = indent * (level + 1)
    if isinstance(v, Branch):
        items = [(k, x) for k, x in v if not isinstance(k, Comment)]
        if not items:
            out.append("{}")
            return
        out.append("{\n")
        for i, (k, x) in enumerate(items):
            out.append(pad + go_json_string(k) + ": ")
            _encode(x, indent, level + 1, out)
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(indent * level + "}")
    elif isinstance(v, list):
        items = [x for x in v if not isinstance(x, Comment)]
        if not items:
            out.append("[]")
            return
        out.append("[\n")
        for i, x in enumerate(items):
            out.append(pad)
            _encode(x, indent, level + 1, out)
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(indent * level + "]")
    else:
        out.append(_scalar(v))


def emit(branches: list[Branch], indent: str = "\t") -> bytes:
    """sops 3.11 prints JSON re-indented with a tab and a final newline."""
    out: list[str] = []
    _encode(branches[0], indent, 0, out)
    out.append("\n")
    return "".join(out).encode("utf-8", "surrogateescape")
