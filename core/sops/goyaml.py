"""go-yaml v3's resolver: the Go type a YAML scalar gets, which the sops MAC depends on.

The MAC covers unencrypted values as Go typed them (YAML 1.2-ish: `yes` is a string, `1e20` a
float, `2024-01-02` a time), so the YAML loader types plain scalars with `go_resolve` and
explicitly tagged ones with `resolve_tagged`; the emitter asks `go_resolve` whether a string
would read back as a string. Sibling of `gotypes` (Go values) for the YAML side.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from core.sops.errors import FormatError
from core.sops.gotypes import GoTime, GoUint, parse_yaml_timestamp

_T = "tag:yaml.org,2002:"
MERGE_TAG = _T + "merge"


class MergeKey(str):
    """A `<<` mapping key go-yaml tags !!merge (plain `<<` or an explicit `!!merge <<`).

    sops keeps it as the key "<<" (the AAD path uses that text) with the aliased mapping
    expanded under it, and prints it back as `!!merge <<`, which every YAML 1.1 reader then
    merges; a quoted "<<" is an ordinary string key and stays one."""


_RESOLVE_MAP: dict[str, Any] = {}
for _v, _words in (
    (True, ("true", "True", "TRUE")),
    (False, ("false", "False", "FALSE")),
    (None, ("", "~", "null", "Null", "NULL")),
    (math.nan, (".nan", ".NaN", ".NAN")),
    (math.inf, (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")),
    (-math.inf, ("-.inf", "-.Inf", "-.INF")),
):
    for _w in _words:
        _RESOLVE_MAP[_w] = _v
_HINT_M = set("yYnNtTfFoO~")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_parse_uint_base0(s: str) -> int | None:
    base = 10
    if len(s) >= 2 and s[0] == "0":
        p = s[1].lower()
        if p == "x":
            base, s = 16, s[2:]
        elif p == "o":
            base, s = 8, s[2:]
        elif p == "b":
            base, s = 2, s[2:]
        else:
            base, s = 8, s[1:]
    if not s or any(c not in _DIGITS[base] for c in s):
        return None
    if base == 10 and len(s.lstrip("0")) > 20:
        return None  # beyond uint64 (and Python's int/str digit limit): Go's range error
    return int(s, base)


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64); None on syntax or range error."""
    neg = False
    body = s
    if body[:1] in "+-":
        neg = body[0] == "-"
        body = body[1:]
    v = _go_parse_uint_base0(body)
    if v is None:
        return None
    v = -v if neg else v
    if not -(2**63) <= v < 2**63:
        return None
    return v


def _go_parse_float(s: str) -> float | None:
    if not _GO_FLOAT.match(s):
        return None
    v = float(s)
    if math.isinf(v):
        return None
    return v


def go_resolve(value: str) -> Any:
    """go-yaml v3 resolve("", value) for a plain scalar, decoded into interface{}."""
    if value == "":
        return None
    c = value[0]
    if c in "+-":
        hint = "S"
    elif c.isascii() and c.isdigit():
        hint = "D"
    elif c in _HINT_M:
        hint = "M"
    elif c == ".":
        hint = "."
    else:
        return value
    if value in _RESOLVE_MAP:
        return _RESOLVE_MAP[value]
    if hint == "M":
        return value
    if hint == ".":
        f = _go_parse_float(value)
        return value if f is None else f
    t = parse_yaml_timestamp(value)
    if t is not None:
        return t
    plain = value.replace("_", "")
    i = _go_parse_int(plain)
    if i is not None:
        return i
    if plain[:1] != "-":
        u = _go_parse_uint_base0(plain[1:] if plain[:1] == "+" else plain)
        if u is not None and u < 2**64 and plain[:1] != "+":
            return GoUint(u)
    if _YAML_FLOAT.match(plain):
        f = _go_parse_float(plain)
        if f is not None:
            return f
    return value


def resolve_tagged(tag: str, value: str) -> Any:
    short = "!!" + tag[len(_T) :] if tag.startswith(_T) else tag
    if short == "!!str":
        return value
    if short == "!!binary":
        try:
            raw = base64.b64decode(re.sub(r"\s+", "", value), validate=True)
        except (binascii.Error, ValueError):
            raise FormatError("!!binary value contains invalid base64 data") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if short in ("!!int", "!!float", "!!bool", "!!null", "!!timestamp"):
        if short == "!!timestamp":
            t = parse_yaml_timestamp(value)
            if t is not None:
                return t
        out = go_resolve(value)
        kind = {
            "!!int": int,
            "!!float": float,
            "!!bool": bool,
            "!!null": type(None),
            "!!timestamp": GoTime,
        }[short]
        if short == "!!float" and isinstance(out, int) and not isinstance(out, bool):
            return float(out)
        if isinstance(out, kind) and not (kind is int and isinstance(out, bool)):
            return out
        raise FormatError(f"cannot decode scalar as {short}")
    return value  # unknown tags decode as the plain string
