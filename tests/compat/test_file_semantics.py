"""The controller's file semantics (`fileSemantics: controller`) next to ours, through a sync.

Controller source (microscaler/secret-manager-controller @ 4a200ca7):
* ``parser/parsers.rs:108-126``: `application.secrets.env` is read, then
  `application.secrets.yaml` overrides it key by key; ours refuses the clash.
* ``parser/parsers.rs:184-213``: a ``#KEY=value`` line is a disabled secret; the same key on
  two lines takes the last; ours treats the comment as a comment and the repeat as an error.
* ``parser/file_finder.rs:169-178``: only `application.secrets.env`, `application.secrets.yaml`
  and `application.properties` are read.
The embedded store cannot disable an entry: a disabled secret is `skipped` there, left as it
is, and never pruned (tests/gcp and tests/azure test_disabled_secrets.py: the stores that can).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import parse_config_text
from core.source import LocalDirSource
from core.sync import run

DIR = "orders/deployment-configuration/profiles/dev"

CONFIG = """
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: shop}}
spec:
  provider: {{local: {{path: {db}}}}}
  naming: controller
  fileSemantics: {semantics}
  secrets: {{environment: dev, prefix: orders}}
  sync: {{prune: true}}
"""


@pytest.fixture(autouse=True)
def _fp_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "file-semantics-test")


def _repo(root: Path, files: dict[str, str]) -> LocalDirSource:
    for name, text in files.items():
        p = root / "repo" / DIR / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return LocalDirSource(root / "repo")


def _cfg(tmp_path: Path, semantics: str):  # noqa: ANN202
    [cfg] = parse_config_text(CONFIG.format(db=tmp_path / "db.sqlite", semantics=semantics))
    return cfg


def _changes(report) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {c.name: (c.action, c.source) for c in report.changes}


def test_yaml_overrides_env_in_controller_mode_and_clashes_in_ours(tmp_path: Path) -> None:
    source = _repo(tmp_path, {
        "application.secrets.env": "DB_PASSWORD=from-env\nONLY_ENV=e\n",
        "application.secrets.yaml": "DB_PASSWORD: from-yaml\n",
    })  # fmt: skip
    report = run([_cfg(tmp_path, "controller")], source, apply=True)
    assert report.errors == []
    assert _changes(report) == {
        "orders-DB_PASSWORD": ("create", f"{DIR}/application.secrets.yaml:DB_PASSWORD"),
        "orders-ONLY_ENV": ("create", f"{DIR}/application.secrets.env:ONLY_ENV"),
    }
    (tmp_path / "ours").mkdir()
    ours = run([_cfg(tmp_path / "ours", "functions")], source, apply=False)
    assert ours.outcome == "failed"
    [clash] = ours.errors
    assert "application.secrets.env" in clash["message"] and "application.secrets.yaml" in clash["message"]


def test_commented_secret_is_disabled_and_skipped_where_the_store_cannot_disable(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "controller")
    source = _repo(tmp_path, {"application.secrets.env": "API_KEY=v1\nTOKEN=t\n"})
    assert run([cfg], source, apply=True).errors == []

    # comment API_KEY out (and a prose comment with '=' that is not a secret)
    source = _repo(tmp_path, {"application.secrets.env": "#API_KEY=v1\n# see https://x?a=b\nTOKEN=t\n"})
    report = run([cfg], source, apply=True)
    assert report.errors == [] and report.outcome == "ok"
    got = {c.name: (c.action, c.reason) for c in report.changes}
    assert got["orders-API_KEY"][0] == "skipped"  # neither updated nor pruned
    assert "cannot disable" in got["orders-API_KEY"][1]
    assert got["orders-TOKEN"] == ("unchanged", "")
    assert set(got) == {"orders-API_KEY", "orders-TOKEN"}
    assert any("1 commented-out secret(s) not synced" in w for w in report.warnings)

    # in our semantics the comment is a comment: the entry is pruned
    ours = run([_cfg(tmp_path, "functions")], source, apply=False)
    assert {c.name: c.action for c in ours.changes}["orders-API_KEY"] == "delete"


def test_last_line_wins_in_controller_mode(tmp_path: Path) -> None:
    source = _repo(tmp_path, {"application.secrets.env": "#K=old\nK=new\n"})
    report = run([_cfg(tmp_path, "controller")], source, apply=False)
    assert _changes(report) == {"orders-K": ("create", f"{DIR}/application.secrets.env:K")}
    ours = run(
        [_cfg(tmp_path, "functions")], _repo(tmp_path, {"application.secrets.env": "K=a\nK=b\n"}), apply=False
    )
    assert ours.outcome == "failed" and "defined twice" in ours.errors[0]["message"]


def test_only_the_files_the_controller_read(tmp_path: Path) -> None:
    source = _repo(tmp_path, {
        "application.secrets.env": "A=1\n",
        "application.secrets.json": '{"B": "2"}\n',
        "application.config.env": "C=3\n",
    })  # fmt: skip
    report = run([_cfg(tmp_path, "controller")], source, apply=False)
    assert set(_changes(report)) == {"orders-A"}
    ours = run([_cfg(tmp_path, "functions")], source, apply=False)
    assert {c.source.rsplit("/", 1)[-1] for c in ours.changes} == {
        "application.secrets.env:A", "application.secrets.json:B", "application.config.env:C",
    }  # fmt: skip
