"""Switching from the Secret Manager Controller on AWS (moto): `migrate` adopts its secrets.

The controller wrote bare secrets (no tags) named `{prefix}-{key}` (construct_secret_name,
utils.rs:41-64) and application.properties as one compact-JSON secret `{prefix}-properties`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.cli import main
from core.config import parse_config_text
from core.migrate import migrate
from core.source import LocalDirSource
from core.stores import _aws
from core.sync import run
from tests.aws.conftest import CallLog, Factory, write_tree

MANIFEST = """apiVersion: secret-management.microscaler.io/v1beta1
kind: SecretManagerConfig
metadata: {{name: orders-dev, namespace: team-orders}}
spec:
  sourceRef: {{kind: GitRepository, name: orders-repo, namespace: flux-system}}
  provider:
    aws: {{region: us-east-1, endpointUrl: '{url}'}}
  secrets:
    environment: dev
    basePath: services
"""
BASE = "services/orders/deployment-configuration/profiles/dev"


def _tree(root: Path, db_password: str = "s3cret-db") -> Path:
    return write_tree(
        root,
        {
            f"{BASE}/application.secrets.env": f"DB_PASSWORD={db_password}\nAPI_KEY=key-from-git\nTOKEN=t-git\n",
            f"{BASE}/application.properties": "server.port=8080\nlog.level=info\n",
        },
    )


def _versions(sm: Any, name: str) -> int:
    return len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"])


@pytest.fixture
def controller_wrote(sm: Any) -> None:
    """Secrets as the controller left them: its names, its values, no tags; plus lookalikes."""
    sm.create_secret(Name="orders-DB_PASSWORD", SecretString="s3cret-db")
    sm.create_secret(Name="orders-API_KEY", SecretString="key-edited-by-hand")
    # serde_json's compact form of a HashMap: arbitrary key order
    sm.create_secret(Name="orders-properties", SecretString='{"log.level":"info","server.port":"8080"}')
    # An unrelated secret under a desired name, owned by another tool: never adopted.
    sm.create_secret(
        Name="orders-TOKEN", SecretString="t-git", Tags=[{"Key": "managed-by", "Value": "terraform"}]
    )
    # A similar name no key of the manifest maps to: not touched at all.
    sm.create_secret(Name="orders-DB_PASSWORD-old", SecretString="old")


def test_migrate_adopts_controller_secrets_without_rewriting_equal_values(
    aws_env: str, sm: Any, tmp_path: Path, controller_wrote: None
) -> None:
    [cfg] = parse_config_text(MANIFEST.format(url=aws_env))
    root = _tree(tmp_path)

    planned = migrate([cfg], LocalDirSource(root), apply=False)
    assert {(a.action, a.name) for a in planned.adoptions} == {
        ("adopt", "orders-DB_PASSWORD"),
        ("adopt", "orders-properties"),
        ("adopt+update", "orders-API_KEY"),
        ("conflict", "orders-TOKEN"),
    }
    assert "managed-by=terraform" in next(a.reason for a in planned.adoptions if a.action == "conflict")
    assert not _aws.tags_dict(
        sm.describe_secret(SecretId="orders-DB_PASSWORD").get("Tags")
    )  # plan wrote nothing

    log = CallLog()
    applied = migrate([cfg], LocalDirSource(root), apply=True, store_factory=Factory(log))
    assert applied.summary == {"adopt": 2, "adopt+update": 1, "conflict": 1, "ours": 0, "missing": 0}
    # Metadata only for the two equal values (TagResource each); the differing one gets its
    # value, description and tags (PutSecretValue, UpdateSecret, TagResource).
    reads = ("List", "Describe", "Get", "BatchGet")
    writes = {op: n for op, n in log.calls.items() if not op.startswith(reads)}
    assert writes == {"TagResource": 3, "PutSecretValue": 1, "UpdateSecret": 1}
    assert _versions(sm, "orders-DB_PASSWORD") == 1 and _versions(sm, "orders-properties") == 1
    assert _versions(sm, "orders-API_KEY") == 2
    assert sm.get_secret_value(SecretId="orders-API_KEY")["SecretString"] == "key-from-git"
    tags = _aws.tags_dict(sm.describe_secret(SecretId="orders-DB_PASSWORD")["Tags"])
    assert tags["managed-by"] == "secret-manager-functions" and tags["smf-owner"] == "orders-dev/orders/dev"
    assert _aws.tags_dict(sm.describe_secret(SecretId="orders-TOKEN")["Tags"]) == {"managed-by": "terraform"}
    assert "Tags" not in sm.describe_secret(SecretId="orders-DB_PASSWORD-old") or not sm.describe_secret(
        SecretId="orders-DB_PASSWORD-old"
    ).get("Tags")

    again = migrate([cfg], LocalDirSource(root), apply=True)
    assert again.summary == {"adopt": 0, "adopt+update": 0, "conflict": 1, "ours": 3, "missing": 0}
    assert "Nothing to adopt." in again.render()

    # A push now syncs like any other: one changed value is one update, TOKEN stays a conflict.
    _tree(root, db_password="s3cret-db-rotated")
    report = run([cfg], LocalDirSource(root), apply=True)
    actions = {c.name: c.action for c in report.changes}
    assert actions == {
        "orders-DB_PASSWORD": "update",
        "orders-API_KEY": "unchanged",
        "orders-TOKEN": "conflict",
        "orders-properties": "unchanged",
    }
    assert sm.get_secret_value(SecretId="orders-DB_PASSWORD")["SecretString"] == "s3cret-db-rotated"
    assert sm.get_secret_value(SecretId="orders-TOKEN")["SecretString"] == "t-git"


def test_migrate_cli_prints_what_it_took_over_and_never_a_value(
    aws_env: str, sm: Any, tmp_path: Path, controller_wrote: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "smc.yaml"
    config.write_text(MANIFEST.format(url=aws_env))
    root = _tree(tmp_path / "repo")
    assert main(["migrate", "--config", str(config), "--source", str(root)]) == 0
    out = capsys.readouterr().out
    assert "migrate plan" in out and "adopt+update" in out and "orders-API_KEY" in out
    assert main(["migrate", "--config", str(config), "--source", str(root), "--apply", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["adopt"] == 2 and data["applied"] is True
    out_all = json.dumps(data)
    for value in ("s3cret-db", "key-from-git", "key-edited-by-hand", "t-git"):
        assert value not in out_all and value not in out
