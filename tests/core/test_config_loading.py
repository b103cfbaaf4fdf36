"""Issue #10 item 8: hostile or broken config files are ConfigErrors with file and line.

Never a traceback, a hang or a silent last-wins: each case below used to raise AttributeError,
UnicodeDecodeError, RecursionError or ConstructorError, hang on an anchor bomb, or plan for the
second of two `environment:` keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config_file, parse_config_text
from core.errors import ConfigError

GOOD = """\
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata:
  name: demo
spec:
  provider:
    type: local
    local:
      path: /tmp/x.db
  secrets:
    environment: dev
"""
BOMB = "".join(
    f"{c}: &{c} [" + ",".join([f"*{p}"] * 9 if p else ["x"] * 9) + "]\n"
    for p, c in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("metadata:\n  name: demo", "metadata: oops"), 3, "metadata"),
        (GOOD.replace("  name: demo", "  - demo"), 3, "metadata"),
        (GOOD + "    environment: prod\n", 12, "defined twice"),
        (
            GOOD.replace("kind: SecretManagerConfig", "kind: SecretManagerConfig\nkind: Other"),
            3,
            "defined twice",
        ),
        (GOOD + "  x: !!python/object/apply:os.system ['echo hi']\n", 12, "invalid YAML"),
        (GOOD + "  deep: " + "[" * 5000 + "]" * 5000 + "\n", 12, "YAML"),
        (GOOD + "".join("  " * i + "k:\n" for i in range(1, 200)), 75, "deeper than"),
        (GOOD + "  n: " + "9" * 5000 + "\n", 12, "digits"),
        (GOOD + "  ? [a, b]\n  : 1\n", 12, "keys must be scalars"),
        (BOMB + GOOD, 4, "aliases"),
        ("a: &a [*a]\n", 1, "recursive"),
    ],
    ids=[
        "metadata-scalar",
        "metadata-list",
        "duplicate-environment",
        "duplicate-kind",
        "python-tag",
        "deep-flow",
        "deep-block",
        "huge-int",
        "complex-key",
        "anchor-bomb",
        "recursive-alias",
    ],
)
def test_hostile_config_is_a_config_error_with_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "configs/demo.yaml")
    err = info.value
    assert err.path == "configs/demo.yaml"
    assert err.line == line, str(err)
    assert words in str(err)


def test_duplicate_environment_is_not_last_wins() -> None:
    with pytest.raises(ConfigError, match="'environment' is defined twice") as info:
        parse_config_text(GOOD + "    environment: prod\n")
    assert info.value.field == "spec.secrets.environment"


def test_invalid_utf8_config_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_bytes(GOOD.encode() + b"  suspend: \xff\n")
    with pytest.raises(ConfigError, match="not valid UTF-8") as info:
        load_config_file(p)
    assert info.value.line == 12 and info.value.path == str(p)


def test_oversized_config_file_is_refused_without_loading_it(tmp_path: Path) -> None:
    from core.parsers.limits import MAX_FILE_BYTES

    p = tmp_path / "c.yaml"
    p.write_bytes(GOOD.encode() + b"#" * MAX_FILE_BYTES)
    with pytest.raises(ConfigError, match=f"larger than the limit of {MAX_FILE_BYTES} bytes") as info:
        load_config_file(p)
    assert info.value.path == str(p)


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    p = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_config_file(str(p))
    assert info.value.path == str(p)


def test_merge_keys_in_a_config_are_not_duplicates() -> None:
    text = GOOD.replace(
        "  secrets:\n    environment: dev\n", "  secrets:\n    <<: {environment: dev}\n    prefix: p\n"
    )
    (config,) = parse_config_text(text)
    assert config.secrets.environment == "dev" and config.secrets.prefix == "p"
