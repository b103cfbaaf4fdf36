"""core.sync.run over a local directory into the Azure fakes: routing without config store,
pruning a removed service, adoption, and pruning that never reaches other apps or labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.config import parse_config_text
from core.source import LocalDirSource
from core.sync import run
from tests.azure.conftest import azure_config_text
from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault
from tests.support.leakcheck import LeakCheck

SVC = "services/{}/deployment-configuration/profiles/{}"


def write_repo(root: Path, env: str = "dev") -> Path:
    for svc in ("orders", "payments"):
        d = root / SVC.format(svc, env)
        d.mkdir(parents=True, exist_ok=True)
        (d / "application.secrets.env").write_text(
            f"DB_PASSWORD={svc}-{env}-pa55word\nTOKEN={svc}-{env}-tok3n\n"
        )
        (d / "application.properties").write_text(f"db.url=jdbc:pg://{svc}\nfeature.x=on\n")
    return root


def configs(kv: FakeKeyVault, ac: FakeAppConfiguration, **kw):  # type: ignore[no-untyped-def]
    text = azure_config_text(kv, ac, **kw).replace(
        "    environment: dev\n", f"    environment: {kw.get('environment', 'dev')}\n    basePath: services\n"
    )
    return parse_config_text(text)


def changed(report) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((c.action, c.store, c.name) for c in report.changes if c.action != "unchanged")


def test_without_config_store_properties_are_one_json_secret(
    tmp_path: Path, key_vault: FakeKeyVault, app_config: FakeAppConfiguration
) -> None:
    repo = write_repo(tmp_path / "repo")
    report = run(configs(key_vault, app_config, configs_enabled=False), LocalDirSource(repo), apply=True)
    assert not report.errors
    assert json.loads(key_vault.value("orders-dev-properties")) == {
        "db.url": "jdbc:pg://orders",
        "feature.x": "on",
    }
    assert key_vault.content_type("orders-dev-properties") == "application/json"
    assert key_vault.content_type("orders-dev-DB-PASSWORD") == "text/plain"
    assert app_config.items() == {} and app_config.total_calls() == 0


def test_full_resync_prunes_a_removed_service(
    tmp_path: Path, key_vault: FakeKeyVault, app_config: FakeAppConfiguration
) -> None:
    repo = write_repo(tmp_path / "repo")
    cfg = configs(key_vault, app_config)
    assert not run(cfg, LocalDirSource(repo), apply=True).errors
    shutil.rmtree(repo / "services" / "payments")
    report = run(cfg, LocalDirSource(repo), apply=True)
    assert not report.errors
    assert changed(report) == [
        ("delete", "azure-app-configuration", "payments:db.url"),
        ("delete", "azure-app-configuration", "payments:feature.x"),
        ("delete", "azure-key-vault", "payments-dev-DB-PASSWORD"),
        ("delete", "azure-key-vault", "payments-dev-TOKEN"),
    ]
    assert key_vault.deleted_names() == ["payments-dev-DB-PASSWORD", "payments-dev-TOKEN"]
    assert sorted(k for k, _ in app_config.items()) == ["orders:db.url", "orders:feature.x"]


def test_prune_never_touches_other_apps_labels_or_hand_made_keys(
    tmp_path: Path, key_vault: FakeKeyVault, app_config: FakeAppConfiguration
) -> None:
    repo = write_repo(tmp_path / "repo")
    write_repo(repo, env="prod")
    dev = configs(key_vault, app_config)
    prod = configs(key_vault, app_config, name="shop-prod", environment="prod")
    assert not run(dev, LocalDirSource(repo), apply=True).errors
    assert not run(prod, LocalDirSource(repo), apply=True).errors
    # Same keys, two labels: one value per environment.
    assert app_config.items()[("orders:db.url", "dev")]["value"] == "jdbc:pg://orders"
    assert ("orders:db.url", "prod") in app_config.items()
    app_config.seed("orders:hand-made", "x", "dev")  # someone's key under our prefix and label
    app_config.seed("billing:db.url", "y", "dev")  # another app, same label
    (repo / SVC.format("orders", "dev") / "application.properties").write_text("feature.x=on\n")
    report = run(dev, LocalDirSource(repo), apply=True)
    assert changed(report) == [("delete", "azure-app-configuration", "orders:db.url")]
    items = app_config.items()
    assert ("orders:db.url", "prod") in items  # the prod label is not ours to prune
    assert ("orders:hand-made", "dev") in items and ("billing:db.url", "dev") in items


def test_existing_unmanaged_secret_is_a_conflict_unless_adopted(
    tmp_path: Path, key_vault: FakeKeyVault, app_config: FakeAppConfiguration
) -> None:
    repo = write_repo(tmp_path / "repo")
    key_vault.seed("ORDERS-DEV-TOKEN", "hand-made-token")  # same secret, other case
    report = run(configs(key_vault, app_config), LocalDirSource(repo), apply=True)
    conflicts = [c for c in report.changes if c.action == "conflict"]
    assert [(c.store, c.name) for c in conflicts] == [("azure-key-vault", "orders-dev-TOKEN")]
    assert key_vault.value("orders-dev-token") == "hand-made-token"
    adopt = configs(key_vault, app_config, spec_extra="")[0]
    adopt.sync.adopt = True
    report = run([adopt], LocalDirSource(repo), apply=True)
    assert ("update", "azure-key-vault", "orders-dev-TOKEN") in changed(report)
    assert key_vault.value("orders-dev-token") == "orders-dev-tok3n"
    assert key_vault.secret_names().count("ORDERS-DEV-TOKEN") == 1  # the vault keeps its spelling
    assert key_vault.tags("orders-dev-token")["managed-by"] == "secret-manager-functions"
    LeakCheck(["hand-made-token", "orders-dev-tok3n", "orders-dev-pa55word"]).scan(
        json.dumps(report.to_dict()), report.render(show_unchanged=True)
    )


def test_key_vault_reference_and_config_of_one_key_clash(
    tmp_path: Path, key_vault: FakeKeyVault, app_config: FakeAppConfiguration
) -> None:
    repo = write_repo(tmp_path / "repo")
    props = repo / SVC.format("orders", "dev") / "application.properties"
    props.write_text("db.url=jdbc:pg://orders\nTOKEN=not-a-secret\n")  # TOKEN is also a secret
    cfg = configs(key_vault, app_config, app_config_extra="        keyVaultReferences: true\n")
    report = run(cfg, LocalDirSource(repo), apply=True)
    assert len(report.errors) == 1 and "orders:TOKEN" in report.errors[0]["message"]
    assert not [n for n in key_vault.secret_names() if n.startswith("orders")]  # nothing of orders
    assert key_vault.value("payments-dev-TOKEN") == "payments-dev-tok3n"
    assert app_config.items()[("payments:TOKEN", "dev")]["content_type"].startswith(
        "application/vnd.microsoft.appconfig.keyvaultref+json"
    )
