"""One sync run over two services: `a` with valid files (no plaintext secrets file when requireEncrypted is on), `b` with one file under test.

The fail-closed property every hostile-input test checks: whatever `b`'s file holds, the run
ends normally, `a` is synced, and `b` either synced too or has an error naming its file, with
nothing written for it. Used by tests/core, tests/sops and the fuzz targets in tests/fuzz.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.config import load_config_file
from core.report import Report
from core.source import LocalDirSource
from core.stores.local import LocalConfigStore, LocalSecretStore
from core.sync import run
from tests.core.conftest import SVC, write_config

A_FILES = {
    "application.secrets.env": "A_PASSWORD=alpha-secret-value\n",
    "application.properties": "a.port=8080\n",
}
CONFIG_FILES = "    files: [application.properties, application.config.yaml, application.config.json, application.config.env]"


@dataclass
class Outcome:
    root: Path
    report: Report
    a_expected: set[str]
    a_names: set[str]
    b_names: set[str]
    b_errors: list[dict]

    @property
    def b_failed(self) -> bool:
        return bool(self.b_errors)


def ensure_local_store_key() -> None:
    """The local store encrypts at rest; tests outside tests/core have no fixture for it."""
    os.environ.setdefault("SMF_LOCAL_STORE_KEY", base64.b64encode(os.urandom(32)).decode())


def run_two_services(
    b_name: str,
    b_data: bytes,
    *,
    root: Path | None = None,
    require_encrypted: bool = False,
    keyring: object | None = None,
) -> Outcome:
    """Sync `a` (valid) and `b` (one file `b_name` holding `b_data`) into a fresh local store."""
    ensure_local_store_key()
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="two-services-"))
    repo = root / "repo"
    a_files = {k: v for k, v in A_FILES.items() if not (require_encrypted and ".secrets." in k)}
    for name, text in a_files.items():
        p = repo / SVC.format(service="a") / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    b = repo / SVC.format(service="b") / b_name
    b.parent.mkdir(parents=True, exist_ok=True)
    b.write_bytes(b_data)
    db = root / "store.db"
    config = write_config(root, extra_spec=CONFIG_FILES)
    if require_encrypted:
        config.write_text(
            config.read_text().replace(
                "    environment: dev\n", "    environment: dev\n    requireEncrypted: true\n"
            )
        )
    configs = load_config_file(config)
    report = run(configs, LocalDirSource(repo), apply=True, keyring=keyring)
    names = set(LocalSecretStore(str(db)).names()) | set(LocalConfigStore(str(db)).names())
    b_errors = [e for e in report.errors if e.get("service") == "b"]
    return Outcome(
        root,
        report,
        {"a/dev/a.port"} | (set() if require_encrypted else {"a/dev/A_PASSWORD"}),
        {n for n in names if n.startswith("a/")},
        {n for n in names if n.startswith("b/")},
        b_errors,
    )


def assert_fails_closed(out: Outcome, b_path_name: str) -> dict:
    """`a` synced, `b` failed with one error naming its file, nothing written for `b`."""
    assert out.a_names == out.a_expected, out.report.errors
    assert [e for e in out.report.errors if e.get("service") != "b"] == []
    assert out.b_errors, "the hostile file was accepted"
    err = out.b_errors[0]
    assert err["path"] == f"{SVC.format(service='b')}/{b_path_name}"
    assert out.b_names == set()
    return err
