"""Issue #10 items 1, 2, 7, 10 (merge keys) and 11: a bad file fails its own service, closed.

Every case runs two services in one sync: `a` is valid and must be synced, `b` holds the file
under test and must fail with an error naming that file, with nothing written for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.parsers import decode_file, parse_file
from tests.support.two_services import assert_fails_closed, run_two_services

ENC = "ENC[AES256_GCM,data:3q2+7w==,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]"
AGE = "age:\n        - recipient: age1xyz\n          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n"
STRIPPED = "looks SOPS-encrypted but its metadata is missing or invalid"


# --- item 1: stripped or broken SOPS metadata never syncs as plaintext -----------------------

STRIPPED_FILES = {
    "no sops block (yaml)": ("application.secrets.yaml", f"db:\n    password: {ENC}\n"),
    "no mac (yaml)": (
        "application.secrets.yaml",
        f"db:\n    password: {ENC}\nsops:\n    {AGE}    lastmodified: '2024-01-01T00:00:00Z'\n    version: 3.11.0\n",
    ),
    "sops is a list (yaml)": ("application.secrets.yaml", f"db: {ENC}\nsops:\n    - mac\n    - age\n"),
    "sops is a string (yaml)": ("application.secrets.yaml", f"db: {ENC}\nsops: stripped\n"),
    "mac retyped (yaml)": (
        "application.secrets.yaml",
        f"db: {ENC}\nsops:\n    mac: [1, 2]\n    lastmodified: '2024-01-01T00:00:00Z'\n    {AGE}",
    ),
    "age retyped (yaml)": (
        "application.secrets.yaml",
        f"db: {ENC}\nsops:\n    mac: {ENC}\n    lastmodified: '2024-01-01T00:00:00Z'\n    age: oops\n",
    ),
    "no sops_mac (dotenv)": (
        "application.secrets.env",
        f"DB={ENC}\nsops_lastmodified=2024-01-01T00:00:00Z\nsops_age__list_0__map_recipient=age1xyz\n",
    ),
    "only ENC values (dotenv)": ("application.secrets.env", f"DB={ENC}\nAPI={ENC}\n"),
    "duplicated sops_mac (dotenv)": (
        "application.secrets.env",
        f"DB={ENC}\nsops_mac={ENC}\nsops_mac={ENC}\nsops_lastmodified=2024-01-01T00:00:00Z\n",
    ),
    "no sops block (json)": ("application.secrets.json", f'{{"db": "{ENC}"}}'),
    "sops is a string (json)": ("application.secrets.json", f'{{"db": "{ENC}", "sops": "x"}}'),
    "ENC hidden behind a JSON escape": (
        "application.secrets.json",
        '{"db": "\\u0045NC[AES256_GCM,data:eA==]"}',
    ),
    "sops key hidden behind a JSON escape": (
        "application.secrets.json",
        '{"db": "x", "\\u0073ops": {"mac": "m"}}',
    ),
    "ENC in a config file": ("application.properties", f"db.password={ENC}\n"),
    "sops.mac in a properties file": ("application.properties", "sops.mac=abc\nsops.lastmodified=now\n"),
}


@pytest.mark.parametrize("require_encrypted", [False, True], ids=["optional", "required"])
@pytest.mark.parametrize("case", list(STRIPPED_FILES), ids=list(STRIPPED_FILES))
def test_stripped_sops_metadata_fails_its_service(case: str, require_encrypted: bool, tmp_path: Path) -> None:
    name, text = STRIPPED_FILES[case]
    out = run_two_services(name, text.encode(), root=tmp_path, require_encrypted=require_encrypted)
    err = assert_fails_closed(out, name)
    assert STRIPPED in err["message"]
    assert "3q2+7w" not in str(out.report.errors) + str(out.report.warnings)


def test_a_plain_file_mentioning_sops_in_a_comment_still_syncs(tmp_path: Path) -> None:
    out = run_two_services(
        "application.secrets.env", b"# encrypt me with sops: later\nB_TOKEN=plain-value\n", root=tmp_path
    )
    assert out.b_errors == [] and out.b_names == {"b/dev/B_TOKEN"}


# --- item 2: hostile files fail only their own service -----------------------------------------

BOMB = (
    "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)
HOSTILE = {
    "10,000-deep YAML (flow)": ("application.config.yaml", "a: " + "[" * 10000 + "]" * 10000, 1),
    "1,000-deep YAML (block)": (
        "application.config.yaml",
        "".join(" " * i + "k:\n" for i in range(1000)),
        65,
    ),
    "10,000-deep JSON": ("application.config.json", '{"a": ' + "[" * 10000 + "]" * 10000 + "}", 1),
    "complex key": ("application.config.yaml", "ok: 1\n? [x, y]\n: 1\n", 2),
    "alias as a complex key": ("application.config.yaml", "x: &k [1]\n*k : 2\n", 2),
    "5,000-digit integer (YAML)": ("application.config.yaml", "n: " + "7" * 5000 + "\n", 1),
    "5,000-digit integer (JSON)": ("application.config.json", '{\n"n": ' + "7" * 5000 + "}", 2),
    "billion laughs": ("application.config.yaml", BOMB, None),
    "recursive alias": ("application.config.yaml", "a: &a [*a]\n", 1),
    "secrets YAML bomb": ("application.secrets.yaml", BOMB, None),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_file_fails_only_its_service(case: str, tmp_path: Path) -> None:
    name, text, line = HOSTILE[case]
    err = assert_fails_closed(run_two_services(name, text.encode(), root=tmp_path), name)
    if line is not None:
        assert err.get("line") == line
    assert "Traceback" not in err["message"]


def test_oversized_file_fails_only_its_service(tmp_path: Path) -> None:
    err = assert_fails_closed(
        run_two_services("application.properties", b"k=" + b"v" * (5 * 1024 * 1024), root=tmp_path),
        "application.properties",
    )
    assert "limit" in err["message"]


# --- item 7: keys cannot climb out of their service --------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("application.properties", "ok=1\n../../alpha/dev/server.port=9\n", 2),
        ("application.secrets.env", "A=1\nB=2\na//b=3\n", 3),
        ("application.secrets.env", "/lead=1\n", 1),
        ("application.properties", "trail/=1\n", 1),
        ("application.properties", "a/./b=1\n", 1),
        ("application.config.yaml", "x: 1\n'../../alpha/dev/server.port': 2\n", 2),
        ("application.config.json", '{"x": 1,\n "a\\\\..\\\\b": 2}', None),
    ],
)
def test_path_traversal_keys_are_refused(name: str, text: str, line: int | None, tmp_path: Path) -> None:
    err = assert_fails_closed(run_two_services(name, text.encode(), root=tmp_path), name)
    assert "path segment" in err["message"]
    if line is not None:
        assert err["line"] == line


def test_dotted_keys_are_still_fine() -> None:
    assert [i.key for i in parse_file("a.properties", "a.b.c=1\nx..y=2\n")] == ["a.b.c", "x..y"]


# --- item 10 (plaintext part): YAML merge keys are merged --------------------------------------


def test_plaintext_merge_keys_are_merged(tmp_path: Path) -> None:
    text = (
        "defaults: &defaults\n  host: db\n  port: 5432\n"
        "svc:\n  <<: *defaults\n  port: 6543\n"
        "other:\n  <<: [*defaults, {extra: 1}]\n"
        "tagged:\n  !!merge <<: {host: t}\n"
    )
    items = {i.key: i.value for i in parse_file("application.secrets.yaml", text)}
    assert items == {
        "defaults.host": "db",
        "defaults.port": "5432",
        "svc.host": "db",
        "svc.port": "6543",
        "other.host": "db",
        "other.port": "5432",
        "other.extra": "1",
        "tagged.host": "t",
    }
    out = run_two_services("application.secrets.yaml", text.encode(), root=tmp_path)
    assert "b/dev/svc.host" in out.b_names and not any("__" in n for n in out.b_names)


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    items = {i.key: i.value for i in parse_file("a.yaml", "svc:\n  '<<': {host: x}\n")}
    assert items == {"svc.<<.host": "x"}


def test_an_explicit_key_may_override_a_merged_one_but_not_repeat_itself() -> None:
    with pytest.raises(Exception, match="defined twice"):
        parse_file("a.yaml", "d: &d {a: 1}\ns:\n  <<: *d\n  b: 1\n  b: 2\n")


# --- item 11: .properties encoding -------------------------------------------------------------


def test_properties_latin1_fallback_with_warning(tmp_path: Path) -> None:
    latin1 = "greeting=Bonjour à tous\nname=Zoë\n".encode("iso-8859-1")
    text, warning = decode_file("p/application.properties", latin1)
    assert text == "greeting=Bonjour à tous\nname=Zoë\n"
    assert warning and "ISO-8859-1" in warning and "p/application.properties:1" in warning
    out = run_two_services("application.properties", latin1, root=tmp_path)
    assert out.b_errors == [] and out.b_names == {"b/dev/greeting", "b/dev/name"}
    assert any("ISO-8859-1" in w for w in out.report.warnings)


def test_properties_utf8_wins_and_other_formats_stay_strict() -> None:
    assert decode_file("application.properties", "a=à\n".encode()) == ("a=à\n", None)
    with pytest.raises(Exception, match="not valid UTF-8") as info:
        decode_file("application.config.yaml", b"a: ok\nb: \xe0\n")
    assert info.value.line == 2  # type: ignore[attr-defined]
