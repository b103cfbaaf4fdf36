"""The sops tree, the encryption rules and the MAC walk (sops.go Tree.Decrypt).

A mapping is a `Branch`: a list of `(key, value)` pairs in file order, where a key may be a
`Comment`. A sequence is a plain list whose items may be `Comment`s. Leaves are str, bytes,
int, float, bool, GoTime, Comment or None (None is never walked).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from core.sops.cipher import CipherError, Comment, decrypt_value
from core.sops.gotypes import GoTime, GoUint, format_f

# sha256(b"sops"): the MAC prefix when mac_only_encrypted is set.
MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()


class Branch(list):
    """An ordered mapping: list of (key, value) tuples."""


class WalkError(Exception):
    """A tree walk failure; `where` is the key path, `kind` 'value' (rc 25) or 'tree'."""

    def __init__(self, message: str, where: list[str], kind: str = "value") -> None:
        super().__init__(message)
        self.where = where
        self.kind = kind


@dataclass
class Rules:
    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    unencrypted_comment_regex: str = ""
    encrypted_comment_regex: str = ""
    mac_only_encrypted: bool = False

    def compiled(self) -> _CompiledRules:
        return _CompiledRules(self)


def _go_re(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        # Go ignores the error of regexp.Match (matched=false); mimic with a never-match.
        return re.compile(r"(?!)")


class _CompiledRules:
    def __init__(self, r: Rules) -> None:
        self.r = r
        self.ure = _go_re(r.unencrypted_regex)
        self.ere = _go_re(r.encrypted_regex)
        self.ucre = _go_re(r.unencrypted_comment_regex)
        self.ecre = _go_re(r.encrypted_comment_regex)

    def should_be_encrypted(self, path: list[str], stack: list[list[str]], is_comment: bool) -> bool:
        r = self.r
        encrypted = True
        if r.unencrypted_suffix:
            if any(p.endswith(r.unencrypted_suffix) for p in path):
                encrypted = False
        if r.encrypted_suffix:
            encrypted = any(p.endswith(r.encrypted_suffix) for p in path)
        if self.ure is not None:
            if any(self.ure.search(p) for p in path):
                encrypted = False
        if self.ere is not None:
            encrypted = any(self.ere.search(p) for p in path)
        if self.ucre is not None:
            if any(self.ucre.search(c) for cs in stack for c in cs):
                encrypted = False
        if self.ecre is not None:
            encrypted = False
            last_i = len(stack) - 1
            last_j = len(stack[-1]) - 1
            for i, cs in enumerate(stack):
                for j, c in enumerate(cs):
                    if is_comment and i == last_i and j == last_j:
                        continue
                    if self.ecre.search(c):
                        encrypted = True
                        break
                if encrypted:
                    break
        return encrypted


def to_bytes(v: object) -> bytes:
    """sops.ToBytes: the bytes a leaf contributes to the MAC."""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool):
        return b"True" if v else b"False"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return format_f(v).encode()
    if isinstance(v, GoTime):
        return v.marshal_text()
    if isinstance(v, Comment):
        return to_bytes(v.value)
    raise TypeError("Could not convert unknown type to bytes")


Leaf = Callable[[object, list[str], list[list[str]]], object]


def _walk_value(v: object, path: list[str], stack: list[list[str]], leaf: Leaf) -> object:
    if v is None:
        return None
    if isinstance(v, Branch):
        return _walk_branch(v, path, stack, leaf)
    if isinstance(v, list):
        return _walk_slice(v, path, stack, leaf)
    if isinstance(v, GoUint):
        raise WalkError("Cannot walk value, unknown type: uint64", path, "tree")
    if isinstance(v, (str, bytes, bool, int, float, GoTime, Comment)):
        return leaf(v, path, stack)
    raise WalkError("Cannot walk value, unknown type", path, "tree")


def _walk_slice(seq: list, path: list[str], stack: list[list[str]], leaf: Leaf) -> list:
    stack = stack + [[]]
    for i, v in enumerate(seq):
        is_c = isinstance(v, Comment)
        if is_c:
            stack[-1] = stack[-1] + [v.value]
        seq[i] = _walk_value(v, path, stack, leaf)
        if not is_c:
            stack[-1] = []
    return seq


def _walk_branch(branch: Branch, path: list[str], stack: list[list[str]], leaf: Leaf) -> Branch:
    stack = stack + [[]]
    for i, (k, v) in enumerate(branch):
        if isinstance(k, Comment):
            stack[-1] = stack[-1] + [k.value]
            out = _walk_value(k, path, stack, leaf)
            if isinstance(out, Comment):
                branch[i] = (out, None)
            elif isinstance(out, str):
                branch[i] = (Comment(out), None)
            else:
                raise WalkError("walkValue of Comment should be either Comment or string", path, "tree")
            continue
        v_is_c = isinstance(v, Comment)
        if v_is_c:
            stack[-1] = stack[-1] + [v.value]
        if not isinstance(k, str):
            raise WalkError("Tree contains a non-string key", path, "tree")
        branch[i] = (k, _walk_value(v, path + [k], stack, leaf))
        if not v_is_c:
            stack[-1] = []
    return branch


def decrypt_tree(branches: list[Branch], rules: Rules, key: bytes) -> str:
    """Decrypt every branch in place and return the computed MAC ('%X' of SHA-512)."""
    h = hashlib.sha512()
    if rules.mac_only_encrypted:
        h.update(MAC_ONLY_ENCRYPTED_INIT)
    cr = rules.compiled()
    mac_all = not rules.mac_only_encrypted

    def leaf(v: object, path: list[str], stack: list[list[str]]) -> object:
        is_comment = isinstance(v, Comment)
        encrypted = cr.should_be_encrypted(path, stack, is_comment)
        if encrypted:
            aad = ":".join(path) + ":"
            if is_comment:
                try:
                    out = decrypt_value(v.value, key, aad)
                except CipherError:
                    out = v  # sops: assume the comment was never encrypted
            else:
                if not isinstance(v, str):
                    raise WalkError("value that should be encrypted is not a string", path)
                try:
                    out = decrypt_value(v, key, aad)
                except CipherError as exc:
                    raise WalkError(f"Could not decrypt value: {exc}", path) from None
        else:
            out = v
        if mac_all or encrypted:
            if not isinstance(out, Comment):
                try:
                    h.update(to_bytes(out))
                except (TypeError, ValueError):
                    raise WalkError("Could not convert value to bytes", path, "tree") from None
        return out

    for b in branches:
        _walk_branch(b, [], [], leaf)
    return h.hexdigest().upper()
