"""Key sources and key groups: several recipients, Shamir 3 groups threshold 2, env sources."""

from __future__ import annotations

import pytest
import yaml

from core.sops import DataKeyError, KeyRing, decrypt, detect_format
from tests.sops.conftest import AgeKey, Sops

PLAIN = "password: correct-horse-battery\nnested:\n  token: tok-123456\n"
DOTENV = "PASSWORD=correct-horse-battery\nTOKEN=tok-123456\n"


def _shamir_rule(keys: list[AgeKey]) -> str:
    groups = "".join(f"      - age:\n          - {k.recipient}\n" for k in keys)
    return f"creation_rules:\n  - path_regex: .*\n    shamir_threshold: 2\n    key_groups:\n{groups}"


JSON = '{"password": "correct-horse-battery", "nested": {"token": "tok-123456"}}'
INI = "[db]\npassword = correct-horse-battery\ntoken = tok-123456\n"


@pytest.mark.parametrize(
    ("name", "plain"), [("s.yaml", PLAIN), ("s.env", DOTENV), ("s.json", JSON), ("s.ini", INI)]
)
def test_shamir_two_of_three(name: str, plain: str, sops: Sops, age_keys: list[AgeKey]) -> None:
    data = sops.encrypt(name, plain, sops_yaml=_shamir_rule(age_keys[:3]))
    assert b"key_groups" in data and b"shamir_threshold" in data
    fmt = detect_format(name)
    for pair in ([0, 1], [0, 2], [1, 2]):
        keys = [age_keys[i] for i in pair]
        theirs = sops.decrypt(name, data, keys=keys)
        assert theirs.rc == 0
        ours = decrypt(data, fmt, path=name, keyring=KeyRing(age_identities=[k.secret for k in keys], env={}))
        assert ours == theirs.out
    theirs = sops.decrypt(name, data, keys=[age_keys[2]])
    assert theirs.rc == 128
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, fmt, path=name, keyring=KeyRing(age_identities=[age_keys[2].secret], env={}))
    assert "2 successful key groups required, got 1" in str(ei.value)


def test_several_recipients_any_one_decrypts(sops: Sops, age_keys: list[AgeKey]) -> None:
    data = sops.encrypt("r.yaml", PLAIN, recipients=age_keys[:3])
    for k in age_keys[:3]:
        ring = KeyRing(age_identities=[k.secret], env={})
        assert (
            yaml.safe_load(decrypt(data, "yaml", path="r.yaml", keyring=ring))["password"]
            == "correct-horse-battery"
        )


def test_age_identities_from_env(sops: Sops, age_keys: list[AgeKey], tmp_path) -> None:
    data = sops.encrypt("e.yaml", PLAIN, recipients=[age_keys[1]])
    # SOPS_AGE_KEY with several keys, comments and blank lines
    multi = f"# comment\n{age_keys[0].secret}\n\n{age_keys[1].secret}\n"
    out = decrypt(data, "yaml", path="e.yaml", keyring=KeyRing(env={"SOPS_AGE_KEY": multi}))
    assert b"correct-horse-battery" in out
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(f"# created: today\n{age_keys[1].secret}\n")
    out = decrypt(data, "yaml", path="e.yaml", keyring=KeyRing(env={"SOPS_AGE_KEY_FILE": str(keyfile)}))
    assert b"tok-123456" in out
    cfg = tmp_path / "cfg" / "sops" / "age"
    cfg.mkdir(parents=True)
    (cfg / "keys.txt").write_text(age_keys[1].secret + "\n")
    out = decrypt(
        data, "yaml", path="e.yaml", keyring=KeyRing(env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    )
    assert b"tok-123456" in out


def test_bad_identity_text_is_named_not_printed(sops: Sops, age_keys: list[AgeKey]) -> None:
    data = sops.encrypt("b.yaml", PLAIN, recipients=[age_keys[0]])
    bogus = "AGE-SECRET-KEY-1NOTAVALIDKEYATALLNOTAVALIDKEY"
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, "yaml", path="b.yaml", keyring=KeyRing(age_identities=[bogus], env={}))
    assert bogus not in str(ei.value) and "caller identity 1" in str(ei.value)


def test_decryption_order_and_cache_across_files(sops: Sops, age_keys: list[AgeKey]) -> None:
    ring = KeyRing(age_identities=[age_keys[0].secret], env={"SOPS_DECRYPTION_ORDER": "pgp,age"})
    assert ring.decryption_order == ("pgp", "age")
    files = [sops.encrypt(f"f{i}.yaml", PLAIN, recipients=[age_keys[0]]) for i in range(3)]
    for i, data in enumerate(files):
        decrypt(data, "yaml", path=f"f{i}.yaml", keyring=ring)
        decrypt(data, "yaml", path=f"f{i}.yaml", keyring=ring)
    assert ring.unwrap_calls == 3  # one per distinct data key, not per decrypt


def test_pgp_without_gpg_binary_is_a_clear_error() -> None:
    from core.sops.errors import KeySourceError
    from core.sops.keys import pgp
    from core.sops.metadata import MasterKeyRef

    ref = MasterKeyRef("pgp", (("fp", "ABCDEF0123456789"), ("enc", "-----BEGIN PGP MESSAGE-----")))
    ring = KeyRing(env={"SOPS_GPG_EXEC": "gpg-does-not-exist", "PATH": "/nonexistent"})
    with pytest.raises(KeySourceError, match="no gpg binary found"):
        pgp.decrypt(ref, ring)


def test_broken_age_source_does_not_hide_the_others(sops: Sops, age_keys: list[AgeKey], tmp_path) -> None:
    """As sops: a missing SOPS_AGE_KEY_FILE or a bad line elsewhere is tolerated while another
    source yields a working identity; with no identity at all the error names the sources."""
    data = sops.encrypt("o.yaml", PLAIN, recipients=[age_keys[0]])
    env = {"SOPS_AGE_KEY_FILE": str(tmp_path / "missing.txt"), "SOPS_AGE_KEY": "AGE-SECRET-KEY-1BROKEN"}
    ring = KeyRing(age_identities=[age_keys[0].secret], env=env)
    assert b"correct-horse-battery" in decrypt(data, "yaml", path="o.yaml", keyring=ring)
    with pytest.raises(DataKeyError) as ei:
        decrypt(data, "yaml", path="o.yaml", keyring=KeyRing(env=env))
    msg = str(ei.value)
    assert "SOPS_AGE_KEY_FILE" in msg and "SOPS_AGE_KEY" in msg and "BROKEN" not in msg
