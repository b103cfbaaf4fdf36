"""Integrity: tampered files get the same verdict from us as from `sops -d`.

Verdict classes: ok, MAC mismatch (sops exit 51 / MacMismatchError) or another error.
Errors name the file and never carry a decrypted value or key material.
"""

from __future__ import annotations

import re

import pytest

from core.errors import DecryptError
from core.sops import KeyRing, MacMismatchError, NotEncryptedError, decrypt, detect_format
from tests.sops.conftest import AgeKey, Sops, classify_rc, make_age_key
from tests.support.leakcheck import LeakCheck

YAML = """\
first: alpha-secret-1
second: bravo-secret-2
# a comment
third:
  nested: charlie-secret-3
  list: [delta-secret-4, echo-secret-5]
note_unencrypted: visible-note
count_unencrypted: 7
"""
DOTENV = "A=alpha-secret-1\nB=bravo-secret-2\n#comment\nC_unencrypted=visible-note\n"
SECRETS = ["alpha-secret-1", "bravo-secret-2", "charlie-secret-3", "delta-secret-4", "echo-secret-5"]


def _lines(data: bytes) -> list[str]:
    return data.decode().split("\n")


def _swap_lines(data: bytes, a: str, b: str) -> bytes:
    lines = _lines(data)
    ia = next(i for i, ln in enumerate(lines) if ln.startswith(a))
    ib = next(i for i, ln in enumerate(lines) if ln.startswith(b))
    lines[ia], lines[ib] = lines[ib], lines[ia]
    return "\n".join(lines).encode()


def _swap_values(data: bytes, a: str, b: str, sep: str = ": ") -> bytes:
    lines = _lines(data)
    ia = next(i for i, ln in enumerate(lines) if ln.startswith(a + sep))
    ib = next(i for i, ln in enumerate(lines) if ln.startswith(b + sep))
    va = lines[ia].split(sep, 1)[1]
    vb = lines[ib].split(sep, 1)[1]
    lines[ia] = a + sep + vb
    lines[ib] = b + sep + va
    return "\n".join(lines).encode()


def _sub(data: bytes, pattern: str, repl: str) -> bytes:
    out, n = re.subn(pattern, repl, data.decode(), count=1, flags=re.M)
    assert n == 1, pattern
    return out.encode()


def _edit_mac(data: bytes) -> bytes:
    def flip(m: re.Match[str]) -> str:
        s = m.group(1)
        c = "A" if s[5] != "A" else "B"
        return m.group(0).replace(s, s[:5] + c + s[6:])

    return re.sub(r"mac\S*[:=] ?ENC\[AES256_GCM,data:([^,]+)", flip, data.decode(), count=1).encode()


YAML_TAMPERS = {
    "untouched": lambda d: d,
    "reorder-entries": lambda d: _swap_lines(d, "first:", "second:"),
    "swap-ciphertexts": lambda d: _swap_values(d, "first", "second"),
    "rename-encrypted-key": lambda d: _sub(d, r"^first:", "primero:"),
    "rename-unencrypted-key": lambda d: _sub(d, r"^note_unencrypted:", "other_unencrypted:"),
    "edit-unencrypted-value": lambda d: _sub(d, r"visible-note", "edited-note"),
    "edit-unencrypted-int": lambda d: _sub(d, r"count_unencrypted: 7", "count_unencrypted: 8"),
    "edit-mac": _edit_mac,
    "edit-lastmodified": lambda d: _sub(d, r'lastmodified: "(\d{4})', r'lastmodified: "1999'),
    "drop-entry": lambda d: _sub(d, r"^second: .*\n", ""),
    "corrupt-ciphertext": lambda d: _sub(d, r"^(first: ENC\[AES256_GCM,data:)(.)", r"\1A\2"),
    "change-type-tag": lambda d: _sub(d, r"^(first: ENC\[.*type:)str\]", r"\1int]"),
    "duplicate-comment-swap": lambda d: d.replace(b"#ENC[", b"#ENX[", 1),
    "remove-mac": lambda d: _sub(d, r"^    mac: .*$", "    mac: ''"),
    "duplicate-top-level-key": lambda d: _sub(d, r"^(first: .*)$", r"\1\n\1"),
    "duplicate-nested-key": lambda d: _sub(d, r"^(    nested: .*)$", r"\1\n\1"),
    "no-metadata-in-first-doc": lambda d: b"x: 1\n---\n" + d,
}

DOTENV_TAMPERS = {
    "untouched": lambda d: d,
    "reorder-entries": lambda d: _swap_lines(d, "A=", "B="),
    "swap-ciphertexts": lambda d: _swap_values(d, "A", "B", "="),
    "edit-unencrypted-value": lambda d: _sub(d, r"visible-note", "edited-note"),
    "edit-mac": _edit_mac,
    "rename-encrypted-key": lambda d: _sub(d, r"^A=", "Z="),
}


def _ours(data: bytes, name: str, key: AgeKey) -> tuple[str, Exception | None]:
    try:
        decrypt(data, detect_format(name), path=name, keyring=KeyRing(age_identities=[key.secret], env={}))
    except MacMismatchError as exc:
        return "mac", exc
    except DecryptError as exc:
        return "error", exc
    return "ok", None


@pytest.fixture(scope="module")
def enc_yaml(sops_session: Sops, age_keys: list[AgeKey]) -> bytes:
    return sops_session.encrypt("t.yaml", YAML, recipients=[age_keys[0]])


@pytest.fixture(scope="module")
def enc_dotenv(sops_session: Sops, age_keys: list[AgeKey]) -> bytes:
    return sops_session.encrypt("t.env", DOTENV, recipients=[age_keys[0]])


@pytest.mark.parametrize("tamper", list(YAML_TAMPERS))
def test_yaml_tamper_verdict(
    tamper: str, enc_yaml: bytes, sops_session: Sops, age_keys: list[AgeKey]
) -> None:
    data = YAML_TAMPERS[tamper](enc_yaml)
    theirs = sops_session.decrypt("t.yaml", data, keys=[age_keys[0]])
    verdict, exc = _ours(data, "t.yaml", age_keys[0])
    assert verdict == classify_rc(theirs.rc), (tamper, theirs.rc, theirs.err[-300:], exc)
    if exc is not None:
        assert "t.yaml" in str(exc)
        LeakCheck(SECRETS).scan(str(exc), repr(exc), where="error message")


@pytest.mark.parametrize("tamper", list(DOTENV_TAMPERS))
def test_dotenv_tamper_verdict(
    tamper: str, enc_dotenv: bytes, sops_session: Sops, age_keys: list[AgeKey]
) -> None:
    data = DOTENV_TAMPERS[tamper](enc_dotenv)
    theirs = sops_session.decrypt("t.env", data, keys=[age_keys[0]])
    verdict, exc = _ours(data, "t.env", age_keys[0])
    assert verdict == classify_rc(theirs.rc), (tamper, theirs.rc, theirs.err[-300:], exc)
    if exc is not None:
        LeakCheck(SECRETS).scan(str(exc), where="error message")


def test_wrong_key(enc_yaml: bytes, sops_session: Sops) -> None:
    stranger = make_age_key()
    theirs = sops_session.decrypt("t.yaml", enc_yaml, keys=[stranger])
    assert theirs.rc == 128
    verdict, exc = _ours(enc_yaml, "t.yaml", stranger)
    assert verdict == "error" and getattr(exc, "code", None) == 128
    assert stranger.secret not in str(exc)


def test_no_key_at_all(enc_yaml: bytes) -> None:
    with pytest.raises(DecryptError) as ei:
        decrypt(enc_yaml, "yaml", path="t.yaml", keyring=KeyRing(env={}))
    assert ei.value.code == 128 and "t.yaml" in str(ei.value)


def test_mac_only_encrypted_ignores_plain_edits(sops_session: Sops, age_keys: list[AgeKey]) -> None:
    rule = (
        "creation_rules:\n  - path_regex: .*\n"
        f"    age: {age_keys[0].recipient}\n"
        "    encrypted_regex: ^secret\n    mac_only_encrypted: true\n"
    )
    data = sops_session.encrypt("m.yaml", "secret: s3cr3t-value\nplain: visible\n", sops_yaml=rule)
    edited = data.replace(b"plain: visible", b"plain: changed")
    for blob, expected in ((data, "ok"), (edited, "ok"), (data.replace(b"secret:", b"secretX:"), "error")):
        theirs = sops_session.decrypt("m.yaml", blob, keys=[age_keys[0]])
        assert classify_rc(theirs.rc) == expected
        assert _ours(blob, "m.yaml", age_keys[0])[0] == expected


def test_not_encrypted() -> None:
    with pytest.raises(NotEncryptedError):
        decrypt(YAML.encode(), "yaml", path="plain.yaml", keyring=KeyRing(env={}))
    with pytest.raises(NotEncryptedError):
        decrypt(DOTENV.encode(), "dotenv", path="plain.env", keyring=KeyRing(env={}))


@pytest.mark.parametrize(
    ("name", "blob"),
    [
        ("bad.yaml", b"a: [1, 2\nsops: {mac: x}\n"),
        ("bad.json", b'{"a": 1, "sops": {"mac": '),
        ("bad.env", b"A=1\nNOEQUALS-secret-line\nsops_mac=x\n"),
        ("bad.ini", b"[s]\nk = v\n[unclosed\n"),
        ("deep.yaml", b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
    ],
)
def test_malformed_files_are_format_errors(name: str, blob: bytes) -> None:
    from core.sops import SopsError

    with pytest.raises(SopsError) as ei:
        decrypt(blob, detect_format(name), path=name, keyring=KeyRing(env={}))
    assert name in str(ei.value)
    assert "secret-line" not in str(ei.value)


def test_truncated_sops_file(enc_yaml: bytes, age_keys: list[AgeKey]) -> None:
    cut = enc_yaml[: len(enc_yaml) // 2]
    with pytest.raises(DecryptError):
        decrypt(cut, "yaml", path="t.yaml", keyring=KeyRing(age_identities=[age_keys[0].secret], env={}))


JSON_DOC = (
    '{"first": "alpha-secret-1", "second": "bravo-secret-2", "n_unencrypted": 5, "obj": {"x": [1, "y"]}}'
)
INI_DOC = (
    "[s]\nfirst = alpha-secret-1\nsecond = bravo-secret-2\nnote_unencrypted = visible-note\n[t]\nx = y\n"
)


def _json_edit(fn):
    import json as _json

    def run(data: bytes) -> bytes:
        doc = _json.loads(data, object_pairs_hook=lambda p: p)
        return _json.dumps(_to_obj(fn(doc))).encode()

    return run


def _to_obj(pairs):
    if isinstance(pairs, list) and pairs and all(isinstance(p, tuple) for p in pairs):
        return {k: _to_obj(v) for k, v in pairs}
    if isinstance(pairs, list):
        return [_to_obj(x) for x in pairs]
    return pairs


def _swap_first_two(doc):
    doc[0], doc[1] = doc[1], doc[0]
    return doc


def _swap_first_two_values(doc):
    (k0, v0), (k1, v1) = doc[0], doc[1]
    doc[0], doc[1] = (k0, v1), (k1, v0)
    return doc


def _set(key, value):
    def fn(doc):
        return [(k, value if k == key else v) for k, v in doc]

    return fn


JSON_TAMPERS = {
    "untouched": lambda d: d,
    "reorder-entries": _json_edit(_swap_first_two),
    "swap-ciphertexts": _json_edit(_swap_first_two_values),
    "edit-unencrypted-number": _json_edit(_set("n_unencrypted", 6)),
    "drop-entry": _json_edit(lambda doc: doc[1:]),
    "rename-encrypted-key": _json_edit(lambda doc: [("primero" if k == "first" else k, v) for k, v in doc]),
    "edit-mac": _edit_mac,
}

INI_TAMPERS = {
    "untouched": lambda d: d,
    "reorder-entries": lambda d: _swap_lines(d, "first", "second"),
    "edit-unencrypted-value": lambda d: _sub(d, r"visible-note", "edited-note"),
    "rename-encrypted-key": lambda d: _sub(d, r"^first ", "other "),
    "rename-section": lambda d: _sub(d, r"^\[s\]", "[z]"),
    "edit-mac": _edit_mac,
}


@pytest.mark.parametrize(
    ("fmt", "tamper"), [("json", t) for t in JSON_TAMPERS] + [("ini", t) for t in INI_TAMPERS]
)
def test_json_ini_tamper_verdict(fmt: str, tamper: str, sops_session: Sops, age_keys: list[AgeKey]) -> None:
    name = f"t.{fmt}"
    enc = sops_session.encrypt(name, JSON_DOC if fmt == "json" else INI_DOC, recipients=[age_keys[0]])
    data = (JSON_TAMPERS if fmt == "json" else INI_TAMPERS)[tamper](enc)
    theirs = sops_session.decrypt(name, data, keys=[age_keys[0]])
    verdict, exc = _ours(data, name, age_keys[0])
    assert verdict == classify_rc(theirs.rc), (tamper, theirs.rc, theirs.err[-300:], exc)
    if exc is not None:
        LeakCheck(SECRETS).scan(str(exc), where="error message")
