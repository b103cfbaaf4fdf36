"""Parsers: dotenv, .properties and YAML/JSON flattening, each with its conventions."""

from __future__ import annotations

import pytest

from core.errors import ParseError
from core.parsers import parse_file


def kv(path: str, text: str) -> dict[str, str]:
    return {i.key: i.value for i in parse_file(path, text)}


def test_dotenv_conventions() -> None:
    text = (
        "# comment\n"
        "export EXPORTED=yes\n"
        'DOUBLE="a b"\n'
        "SINGLE='raw \\n kept'\n"
        'ESCAPED="line1\\nline2\\t\\"q\\""\n'
        "TRAILING=value # comment\n"
        "HASH=not#comment\n"
        'MULTI="first\nsecond"\n'
        "EMPTY=\n"
        "SPACES =  padded  \n"
        "URL=postgres://u:p@h:5432/db?x=1\n"
        "INTERP=${HOME}\n"
    )
    assert kv("application.secrets.env", text) == {
        "EXPORTED": "yes",
        "DOUBLE": "a b",
        "SINGLE": "raw \\n kept",
        "ESCAPED": 'line1\nline2\t"q"',
        "TRAILING": "value",
        "HASH": "not#comment",
        "MULTI": "first\nsecond",
        "EMPTY": "",
        "SPACES": "padded",
        "URL": "postgres://u:p@h:5432/db?x=1",
        "INTERP": "${HOME}",
    }


def test_dotenv_errors_name_line() -> None:
    with pytest.raises(ParseError) as info:
        parse_file("a/application.secrets.env", "OK=1\nNO_EQUALS\n")
    assert (info.value.path, info.value.line) == ("a/application.secrets.env", 2)


def test_properties_full_syntax() -> None:
    text = (
        "# comment\n! bang comment\n"
        "equals=1\n"
        "colon:2\n"
        "space 3\n"
        "  padded   =   4  \n"
        "continued = first \\\n    second\n"
        "unicode=caf\\u00e9\n"
        "key\\ with\\ spaces=5\n"
        "escaped\\:colon=6\n"
        "empty=\n"
    )
    assert kv("application.properties", text) == {
        "equals": "1",
        "colon": "2",
        "space": "3",
        "padded": "4  ",
        "continued": "first second",
        "unicode": "café",
        "key with spaces": "5",
        "escaped:colon": "6",
        "empty": "",
    }


def test_properties_bad_escape_names_line() -> None:
    with pytest.raises(ParseError) as info:
        parse_file("x/application.properties", "a=1\n# c\nb=\\u00G1\n")
    assert info.value.line == 3 and "\\u" in info.value.message


def test_yaml_flattening_rule() -> None:
    text = (
        "db:\n  host: h\n  port: 5432\n  ratio: 0.5\n  big: 1e20\n"
        "flags:\n  on: yes\n  enabled: true\n  off: False\n"
        "hosts: [a, b]\n"
        "nested:\n  - name: x\n    tags: [t1]\n"
        "nothing: null\n"
        "date: 2024-01-02\n"
        "octal: 0o17\n"
        "empty_map: {}\n"
        "text: |\n  two\n  lines\n"
    )
    assert kv("application.config.yaml", text) == {
        "db.host": "h",
        "db.port": "5432",
        "db.ratio": "0.5",
        "db.big": "1e+20",
        "flags.on": "yes",
        "flags.enabled": "true",
        "flags.off": "false",
        "hosts[0]": "a",
        "hosts[1]": "b",
        "nested[0].name": "x",
        "nested[0].tags[0]": "t1",
        "nothing": "",
        "date": "2024-01-02",
        "octal": "15",
        "text": "two\nlines\n",
    }


def test_json_means_the_same_as_yaml() -> None:
    assert kv("a.json", '{"db": {"port": 5432, "on": true, "r": 0.5, "l": [1, null]}}') == kv(
        "a.yaml", "db: {port: 5432, on: true, r: 0.5, l: [1, null]}"
    )


@pytest.mark.parametrize(
    ("path", "text", "line"),
    [
        ("a.yaml", "a: 1\nb: [\n", 3),
        ("a.yaml", "- just\n- a list\n", 1),
        ("a.yaml", "a: 1\na: 2\n", 2),
        ("a.json", '{\n"a": 1,\n}', 3),
    ],
)
def test_structured_errors(path: str, text: str, line: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_file(path, text)
    assert info.value.path == path and info.value.line == line
