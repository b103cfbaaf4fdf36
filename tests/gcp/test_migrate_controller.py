"""Switching from the Secret Manager Controller on GCP (drongo): `migrate` adopts its secrets.

The fork wrote global, automatically replicated secrets named by construct_secret_name
(utils.rs:41-64), labelled only `environment` and `location` (its rest/requests.rs:40-55):
no ownership marker, so nothing is adopted without `migrate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import parse_config_text
from core.migrate import migrate
from core.source import LocalDirSource
from core.stores import _gcp, open_store
from core.sync import run
from tests.gcp.conftest import PROJECT

MANIFEST = f"""apiVersion: secret-management.octopilot.io/v1beta1
kind: SecretManagerConfig
metadata: {{name: orders-dev, namespace: team-orders}}
spec:
  sourceRef: {{kind: GitRepository, name: orders-repo, namespace: flux-system}}
  provider:
    gcp: {{projectId: {PROJECT}, location: us-central1}}
  secrets:
    environment: dev
    suffix: -v2
"""
BASE = "deployment-configuration/profiles/dev"


def _tree(root: Path, api_key: str = "key-from-git") -> Path:
    path = root / BASE
    path.mkdir(parents=True, exist_ok=True)
    (path / "application.secrets.env").write_text(f"DB_PASSWORD=s3cret-db\nAPI_KEY={api_key}\nTOKEN=t-git\n")
    return root


class Counting:
    """A store factory that keeps the stores, so the test can read their call counts."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, kind: str, config: Any) -> Any:
        store = open_store(kind, config)
        store.calls = self.calls
        return store


def _controller_secret(client: Any, name: str, value: str, labels: dict[str, str]) -> None:
    parent = f"projects/{PROJECT}"
    client.create_secret(
        request={
            "parent": parent,
            "secret_id": name,
            "secret": {"replication": {"automatic": {}}, "labels": labels},
        }
    )
    client.add_secret_version(
        request={"parent": f"{parent}/secrets/{name}", "payload": {"data": value.encode()}}
    )


def _versions(client: Any, name: str) -> int:
    return len(list(client.list_secret_versions(request={"parent": f"projects/{PROJECT}/secrets/{name}"})))


def _value(client: Any, name: str) -> str:
    path = f"projects/{PROJECT}/secrets/{name}/versions/latest"
    return client.access_secret_version(request={"name": path}).payload.data.decode()


def test_migrate_adopts_controller_secrets_then_a_push_updates_one(gcp_env: Any, tmp_path: Path) -> None:
    client = _gcp.secret_manager_client()
    labels = {"environment": "dev", "location": "us-central1"}
    # Single-service layout: the controller's service is secrets.prefix or the repo name;
    # with neither, ours is "root", which is what this manifest's prefix becomes.
    _controller_secret(client, "root-DB_PASSWORD-v2", "s3cret-db", labels)
    _controller_secret(client, "root-API_KEY-v2", "key-edited-by-hand", labels)
    _controller_secret(client, "root-TOKEN-v2", "t-git", {**labels, "managed-by": "terraform"})
    _controller_secret(client, "root-DB_PASSWORD-v1", "older", labels)  # similar, not ours to take
    [cfg] = parse_config_text(MANIFEST)
    root = _tree(tmp_path)

    planned = migrate([cfg], LocalDirSource(root), apply=False)
    assert {(a.action, a.name) for a in planned.adoptions} == {
        ("adopt", "root-DB_PASSWORD-v2"),
        ("adopt+update", "root-API_KEY-v2"),
        ("conflict", "root-TOKEN-v2"),
    }

    counting = Counting()
    applied = migrate([cfg], LocalDirSource(root), apply=True, store_factory=counting)
    assert applied.summary["adopt"] == 1 and applied.summary["adopt+update"] == 1
    writes = {m: n for m, n in counting.calls.items() if not m.startswith(("list", "get", "access"))}
    # One label update for the equal value; one version plus its label update for the other.
    assert writes == {"update_secret": 2, "add_secret_version": 1}
    assert _versions(client, "root-DB_PASSWORD-v2") == 1
    assert _versions(client, "root-API_KEY-v2") == 2 and _value(client, "root-API_KEY-v2") == "key-from-git"
    secret = client.get_secret(request={"name": f"projects/{PROJECT}/secrets/root-DB_PASSWORD-v2"})
    assert secret.labels["managed-by"] == "secret-manager-functions"
    assert secret.labels["location"] == "us-central1"  # the controller's labels are kept
    token = client.get_secret(request={"name": f"projects/{PROJECT}/secrets/root-TOKEN-v2"})
    assert token.labels["managed-by"] == "terraform"

    again = migrate([cfg], LocalDirSource(root), apply=True)
    assert (again.summary["adopt"], again.summary["adopt+update"], again.summary["conflict"]) == (0, 0, 1)

    _tree(root, api_key="key-rotated")
    report = run([cfg], LocalDirSource(root), apply=True)
    assert {c.name: c.action for c in report.changes} == {
        "root-DB_PASSWORD-v2": "unchanged",
        "root-API_KEY-v2": "update",
        "root-TOKEN-v2": "conflict",
    }
    assert _value(client, "root-API_KEY-v2") == "key-rotated"
    assert _versions(client, "root-DB_PASSWORD-v1") == 1 and _value(client, "root-DB_PASSWORD-v1") == "older"
