"""The `sops` metadata block (stores/stores.go Metadata.ToInternal) and its flat form.

YAML and JSON carry a nested `sops` mapping; dotenv (`sops_` prefix) and INI (`[sops]`
section) flatten it with `__map_<k>` / `__list_<i>` separators (stores/flatten.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.sops.errors import MetadataError
from core.sops.gotypes import GoTime, parse_rfc3339
from core.sops.tree import Rules

# Key lists in the order internalGroupFrom appends them.
KEY_TYPES = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "pgp", "age")
_RULES = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)


@dataclass(frozen=True)
class MasterKeyRef:
    """One master key entry of a key group: its type and its fields (enc, arn, ...)."""

    type: str
    fields: tuple[tuple[str, Any], ...]

    def get(self, name: str, default: Any = "") -> Any:
        for k, v in self.fields:
            if k == name:
                return v
        return default

    @property
    def enc(self) -> str:
        return str(self.get("enc") or "")

    def describe(self) -> str:
        """A name for errors: ARN, recipient, fingerprint... never key material."""
        for name in ("arn", "recipient", "fp", "resource_id", "key_id", "key_name", "name"):
            v = self.get(name)
            if v:
                if self.type == "azure_kv":
                    return f"{self.get('vault_url')}/keys/{v}/{self.get('version')}"
                if self.type == "hc_vault":
                    return f"{self.get('vault_address')}/v1/{self.get('engine_path')}/keys/{v}"
                return str(v)
        return self.type


@dataclass
class Metadata:
    last_modified: GoTime
    mac: str
    rules: Rules
    key_groups: list[list[MasterKeyRef]] = field(default_factory=list)
    shamir_threshold: int = 0
    version: str = ""


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return _s(v) == "true"


def _to_int(v: Any) -> int:
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise MetadataError("shamir_threshold is not an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    try:
        return int(_s(v))
    except ValueError:
        try:
            f = float(_s(v))
        except ValueError:
            raise MetadataError("shamir_threshold is not an integer") from None
        if not f.is_integer():
            raise MetadataError("shamir_threshold is not an integer") from None
        return int(f)


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple((str(k), _freeze(x)) for k, x in v.items())
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _group(d: dict[str, Any]) -> list[MasterKeyRef]:
    out: list[MasterKeyRef] = []
    for t in KEY_TYPES:
        entries = d.get(t) or []
        if not isinstance(entries, list):
            raise MetadataError(f"sops metadata field {t} is not a list")
        for e in entries:
            if not isinstance(e, dict):
                raise MetadataError(f"sops metadata entry of {t} is not a mapping")
            fields = {}
            for k, v in e.items():
                if k == "context" and isinstance(v, dict):
                    fields[k] = tuple((str(a), None if b is None else _s(b)) for a, b in v.items())
                else:
                    fields[str(k)] = _freeze(v) if isinstance(v, (dict, list)) else _s(v)
            out.append(MasterKeyRef(t, tuple(fields.items())))
    return out


#: Every field sops writes in the metadata block (a `sops_<field>` / `sops.<field>` key in a
#: plaintext file means its metadata was mangled).
FIELDS = (
    *KEY_TYPES,
    "key_groups",
    "shamir_threshold",
    "lastmodified",
    "mac",
    "mac_only_encrypted",
    "version",
    *_RULES,
)
_STRING_FIELDS = ("lastmodified", "mac", "version", *_RULES)


def check_shape(d: Any) -> None:
    """The strict check the sync applies before it trusts a file's metadata (fail closed).

    sops itself is lenient (mapstructure coerces types, a missing MAC only shows up as a MAC
    mismatch after the data key was fetched); here every field must have the type sops
    writes, and the MAC and lastmodified must be present, so a stripped or retyped block is
    refused before any key source is asked."""
    if not isinstance(d, dict):
        raise MetadataError(f"sops metadata is a {_kind(d)}, not a mapping", field="sops")
    for name in _STRING_FIELDS:
        v = d.get(name)
        if v is not None and not isinstance(v, str):
            raise MetadataError(
                f"sops metadata field {name} is a {_kind(v)}, not a string", field=f"sops.{name}"
            )
    mac = d.get("mac")
    if not mac or not mac.startswith("ENC[AES256_GCM,"):
        raise MetadataError("sops metadata has no mac", field="sops.mac")
    if not d.get("lastmodified"):
        raise MetadataError("sops metadata has no lastmodified", field="sops.lastmodified")
    v = d.get("mac_only_encrypted")
    if v is not None and not isinstance(v, bool) and v not in ("true", "false"):
        raise MetadataError(
            "sops metadata field mac_only_encrypted is not a boolean", field="sops.mac_only_encrypted"
        )
    v = d.get("shamir_threshold")
    if v is not None and (
        isinstance(v, bool)
        or not isinstance(v, (int, float, str))
        or (isinstance(v, float) and not v.is_integer())
    ):
        raise MetadataError(
            "sops metadata field shamir_threshold is not an integer", field="sops.shamir_threshold"
        )
    groups = d.get("key_groups")
    if groups is not None:
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise MetadataError(
                "sops metadata field key_groups is not a list of mappings", field="sops.key_groups"
            )
        for i, g in enumerate(groups):
            _check_key_lists(g, f"sops.key_groups.{i}")
    _check_key_lists(d, "sops")


def _check_key_lists(d: dict[str, Any], where: str) -> None:
    for t in KEY_TYPES:
        entries = d.get(t)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise MetadataError(
                f"sops metadata field {t} is a {_kind(entries)}, not a list", field=f"{where}.{t}"
            )
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise MetadataError(f"sops metadata entry of {t} is not a mapping", field=f"{where}.{t}.{i}")
            for k, v in e.items():
                ok = isinstance(v, str) or (
                    k == "context" and isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
                )
                if not ok:
                    raise MetadataError(
                        f"sops metadata field {k} of {t} is a {_kind(v)}, not a string",
                        field=f"{where}.{t}.{i}.{k}",
                    )


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "mapping"
    if isinstance(v, list):
        return "list"
    return type(v).__name__


def metadata_from_dict(d: Any) -> Metadata:
    """Metadata.ToInternal from the decoded `sops` mapping (values may be raw strings)."""
    if not isinstance(d, dict):
        raise MetadataError("sops metadata is not a mapping")
    lm_raw = _s(d.get("lastmodified"))
    lm = parse_rfc3339(lm_raw)
    if lm is None:
        raise MetadataError("sops metadata lastmodified is not an RFC 3339 time")
    rules = Rules(**{r: _s(d.get(r)) for r in _RULES})
    set_rules = [r for r in _RULES if getattr(rules, r)]
    if len(set_rules) > 1:
        raise MetadataError(
            "Cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex,"
            " unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file"
        )
    if not set_rules:
        rules.unencrypted_suffix = "_unencrypted"
    rules.mac_only_encrypted = _to_bool(d.get("mac_only_encrypted"))
    groups: list[list[MasterKeyRef]] = []
    if any(d.get(t) for t in KEY_TYPES):
        groups.append(_group(d))
    elif d.get("key_groups"):
        kg = d["key_groups"]
        if not isinstance(kg, list):
            raise MetadataError("sops metadata key_groups is not a list")
        for g in kg:
            groups.append(_group(g if isinstance(g, dict) else {}))
    else:
        raise MetadataError("No keys found in file")
    return Metadata(
        last_modified=lm,
        mac=_s(d.get("mac")),
        rules=rules,
        key_groups=groups,
        shamir_threshold=_to_int(d.get("shamir_threshold")),
        version=_s(d.get("version")),
    )


# --- flattened form (dotenv / ini) -----------------------------------------------------------

_SEP = re.compile(r"(__map_|__list_)")
MAX_LIST_INDEX = 1000


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    """stores.Unflatten after DecodeNewLines: `a__list_0__map_b` -> {"a": [{"b": v}]}."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        value = value.replace("\\n", "\n") if isinstance(value, str) else value
        parts = _SEP.split(key)
        tokens: list[tuple[str, Any]] = [("map", parts[0])]
        for i in range(1, len(parts), 2):
            kind = "map" if parts[i] == "__map_" else "list"
            tok = parts[i + 1]
            if kind == "list":
                # An index is a small decimal; anything else would let one line allocate a
                # huge list (`__list_99999999`) or index from the end (`__list_-1`).
                if not (tok.isascii() and tok.isdigit()) or len(tok) > 5 or int(tok) >= MAX_LIST_INDEX:
                    raise MetadataError(f"sops metadata key {key} has an invalid list index")
                tok = int(tok)
            tokens.append((kind, tok))
        node: Any = root
        for i, (_kind, tok) in enumerate(tokens):
            last = i == len(tokens) - 1
            if last:
                _set(node, tok, value)
                break
            nxt_kind, nxt_tok = tokens[i + 1]
            child = _get(node, tok)
            if nxt_kind == "map":
                if not isinstance(child, dict):
                    child = {}
                    _set(node, tok, child)
            else:
                if not isinstance(child, list):
                    child = []
                    _set(node, tok, child)
                while len(child) <= nxt_tok:
                    child.append(None)
            node = child
    return root


def _get(node: Any, tok: Any) -> Any:
    if isinstance(node, dict):
        return node.get(tok)
    return node[tok] if tok < len(node) else None


def _set(node: Any, tok: Any, value: Any) -> None:
    if isinstance(node, dict):
        node[tok] = value
    else:
        while len(node) <= tok:
            node.append(None)
        node[tok] = value
