"""Switching from the Secret Manager Controller on Azure (the Key Vault and App Configuration
fakes): `migrate` adopts its entries.

The controller named Key Vault secrets with construct_secret_name (utils.rs:41-64), so a key
with `_` gave a name Key Vault refuses: it never wrote those. Our nearest valid name for them
(`_` -> `-`) is therefore never adopted: an entry already there is someone else's. App
Configuration keys were `{prefix}:{environment}:{key}` with no label (client.rs:52).
"""

from __future__ import annotations

from pathlib import Path

from core.config import parse_config_text
from core.migrate import migrate
from core.source import LocalDirSource
from core.sync import run
from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault

BASE = "services/orders/deployment-configuration/profiles/dev"


def manifest(key_vault: FakeKeyVault, app_config: FakeAppConfiguration) -> str:
    return f"""apiVersion: secret-management.microscaler.io/v1beta1
kind: SecretManagerConfig
metadata: {{name: orders-dev, namespace: team-orders}}
spec:
  sourceRef: {{kind: GitRepository, name: orders-repo, namespace: flux-system}}
  provider:
    azure: {{vaultName: orders-vault, vaultUrl: '{key_vault.url}'}}
  secrets:
    environment: dev
    basePath: services
  configs:
    enabled: true
    appConfigEndpoint: '{app_config.url}'
"""


def _tree(root: Path, api_key: str = "key-from-git") -> Path:
    path = root / BASE
    path.mkdir(parents=True, exist_ok=True)
    (path / "application.secrets.env").write_text(
        f"DB-PASSWORD=s3cret-db\nAPI-KEY={api_key}\nDB_URL=pg://x\n"
    )
    (path / "application.properties").write_text("server.port=8080\n")
    return root


def test_migrate_adopts_controller_entries_then_a_push_updates_one(
    key_vault: FakeKeyVault, app_config: FakeAppConfiguration, tmp_path: Path
) -> None:
    key_vault.seed("orders-DB-PASSWORD", "s3cret-db")
    key_vault.seed("orders-API-KEY", "key-edited-by-hand")
    key_vault.seed("orders-DB-URL", "pg://x")  # hand-made: the controller's name was orders-DB_URL
    app_config.seed("orders:dev:server.port", "8080")  # no label, as the controller wrote it
    [cfg] = parse_config_text(manifest(key_vault, app_config))
    root = _tree(tmp_path)

    planned = migrate([cfg], LocalDirSource(root), apply=False)
    assert {(a.action, a.store, a.name) for a in planned.adoptions} == {
        ("adopt", "azure-key-vault", "orders-DB-PASSWORD"),
        ("adopt+update", "azure-key-vault", "orders-API-KEY"),
        ("conflict", "azure-key-vault", "orders-DB-URL"),
        ("adopt", "azure-app-configuration", "orders:dev:server.port"),
    }
    assert any("refused by azure-key-vault" in w and "orders-DB_URL" in w for w in planned.run.warnings)
    assert key_vault.total_calls() and not any(m in ("PUT", "PATCH") for m, _ in key_vault.calls)

    key_vault.calls.clear()
    app_config.calls.clear()
    applied = migrate([cfg], LocalDirSource(root), apply=True)
    assert applied.run.errors == []
    writes = {k: n for k, n in key_vault.calls.items() if k[0] in ("PUT", "PATCH")}
    # Tags on the current version for the equal value (no new version); one new version else.
    assert writes == {("PATCH", "/secrets/{name}"): 1, ("PUT", "/secrets/{name}"): 1}
    assert key_vault.versions("orders-DB-PASSWORD") == 1
    assert key_vault.tags("orders-DB-PASSWORD")["managed-by"] == "secret-manager-functions"
    assert key_vault.versions("orders-API-KEY") == 2 and key_vault.value("orders-API-KEY") == "key-from-git"
    assert key_vault.tags("orders-DB-URL") == {}
    [(key, kv)] = app_config.items().items()
    assert key == ("orders:dev:server.port", None) and kv["value"] == "8080"
    assert kv["tags"]["managed-by"] == "secret-manager-functions"

    again = migrate([cfg], LocalDirSource(root), apply=True)
    assert (again.summary["adopt"], again.summary["adopt+update"], again.summary["conflict"]) == (0, 0, 1)

    _tree(root, api_key="key-rotated")
    report = run([cfg], LocalDirSource(root), apply=True)
    assert {c.name: c.action for c in report.changes} == {
        "orders-DB-PASSWORD": "unchanged",
        "orders-API-KEY": "update",
        "orders-DB-URL": "conflict",
        "orders:dev:server.port": "unchanged",
    }
    assert key_vault.value("orders-API-KEY") == "key-rotated" and key_vault.value("orders-DB-URL") == "pg://x"
