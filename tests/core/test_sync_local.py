"""End-to-end plan/apply on the embedded local store through the CLI and `core.sync.run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main
from core.config import load_config_file
from core.source import LocalDirSource
from core.stores.local import LocalConfigStore, LocalSecretStore
from core.sync import run
from tests.core.conftest import SECRETS, SVC, write_config
from tests.support.leakcheck import LeakCheck

ORDERS = SVC.format(service="orders")
PAYMENTS = SVC.format(service="payments")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys, *args: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    rc, out, _ = cli(capsys, *args, "--json")
    return rc, json.loads(out)


def test_plan_apply_plan_edit_prune(repo: Path, tmp_path: Path, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    cfg = str(write_config(tmp_path))
    leaks = LeakCheck(SECRETS)
    rc, plan = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo), "--exit-code")
    assert rc == 2
    assert plan["summary"]["create"] == 9 and plan["errors"] == []
    stores = {c["store"] for c in plan["changes"]}
    assert stores == {"local-secrets", "local-configs"}
    assert {
        "action": "create",
        "store": "local-secrets",
        "name": "orders/dev/DB_PASSWORD",
        "source": f"{ORDERS}/application.secrets.env:DB_PASSWORD",
    }.items() <= next(c for c in plan["changes"] if c["name"] == "orders/dev/DB_PASSWORD").items()

    rc, applied = cli_json(capsys, "apply", "--config", cfg, "--source", str(repo))
    assert rc == 0 and applied["summary"]["create"] == 9
    secrets = LocalSecretStore(str(tmp_path / "store.db"))
    configs = LocalConfigStore(str(tmp_path / "store.db"))
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "orders db pa55word"
    assert secrets.get_value("payments/dev/gateway.api_key") == "payments-gateway-key-1"
    assert configs.get_value("orders/dev/orders.greeting") == "Bonjour à tous"
    assert configs.get_value("orders/dev/db.url") == "jdbc:postgresql://db/orders"
    assert configs.get_value("payments/dev/payments.retries") == "3"

    rc, again = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo), "--exit-code")
    assert rc == 0 and again["summary"]["unchanged"] == 9
    assert not [c for c in again["changes"] if c["action"] != "unchanged"]
    rc, noop = cli_json(capsys, "apply", "--config", cfg, "--source", str(repo))
    assert secrets.versions("orders/dev/DB_PASSWORD") == 1  # second apply wrote nothing

    env = repo / ORDERS / "application.secrets.env"
    env.write_text(env.read_text().replace("orders db pa55word", "rotated db pa55word"))
    leaks = LeakCheck([*SECRETS, "rotated db pa55word"])
    rc, edit = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo))
    changed = [{k: v for k, v in c.items() if k not in ("owner", "line")}
               for c in edit["changes"] if c["action"] != "unchanged"]  # fmt: skip
    assert changed == [
        {
            "action": "update",
            "store": "local-secrets",
            "name": "orders/dev/DB_PASSWORD",
            "source": f"{ORDERS}/application.secrets.env:DB_PASSWORD",
        }
    ]
    cli(capsys, "apply", "--config", cfg, "--source", str(repo))
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "rotated db pa55word"

    env.write_text('DB_PASSWORD="rotated db pa55word"\n')  # API_TOKEN removed
    rc, no_prune = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo))
    assert [c for c in no_prune["changes"] if c["action"] != "unchanged"] == []
    rc, pruned = cli_json(capsys, "apply", "--config", cfg, "--source", str(repo), "--prune")
    changed = [{k: v for k, v in c.items() if k != "owner"}
               for c in pruned["changes"] if c["action"] != "unchanged"]  # fmt: skip
    assert changed == [
        {
            "action": "delete",
            "store": "local-secrets",
            "name": "orders/dev/API_TOKEN",
            "source": f"{ORDERS}/application.secrets.env:API_TOKEN",
        }
    ]
    assert secrets.get_value("orders/dev/API_TOKEN") is None

    rc, out, err = cli(capsys, "plan", "--config", cfg, "--source", str(repo), "--show-unchanged")
    assert "orders/dev/DB_PASSWORD" in out
    leaks.scan(out, err, caplog.text, where="CLI output")
    leaks.scan_file(tmp_path / "store.db")  # encrypted at rest


def test_human_plan_is_grouped_by_store(repo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = cli(capsys, "plan", "--config", str(write_config(tmp_path)), "--source", str(repo))
    assert rc == 0
    assert out.index("local-configs:") < out.index("local-secrets:")
    assert "+ create    orders/dev/DB_PASSWORD" in out
    assert "Summary (to do): 9 to create" in out
    LeakCheck(SECRETS).scan(out)


def _config(tmp_path: Path, **kw: str):  # type: ignore[no-untyped-def]
    return load_config_file(write_config(tmp_path, **kw))


def test_bad_file_fails_only_its_service(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    run(configs, LocalDirSource(repo), apply=True)
    secrets = LocalSecretStore(str(tmp_path / "store.db"))
    (repo / ORDERS / "application.secrets.env").write_text('DB_PASSWORD="changed value here"\n')
    (repo / ORDERS / "application.properties").write_text("ok=1\nbad=\\u12G4\n")
    (repo / PAYMENTS / "application.config.yaml").write_text("payments:\n  currency: USD\n  retries: 3\n")
    report = run(configs, LocalDirSource(repo), apply=True, prune=True)
    assert len(report.errors) == 1
    err = report.errors[0]
    assert err["path"] == f"{ORDERS}/application.properties" and err["line"] == 2
    assert err["service"] == "orders"
    # nothing of the orders service changed, in any store, and nothing was pruned
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "orders db pa55word"
    assert secrets.get_value("orders/dev/API_TOKEN") == "tok-orders-123456"
    assert {c.name for c in report.changes if c.action != "unchanged"} == {"payments/dev/payments.currency"}
    assert LocalConfigStore(str(tmp_path / "store.db")).get_value("payments/dev/payments.currency") == "USD"


@pytest.mark.parametrize(
    ("filename", "text", "line", "field"),
    [
        ("application.secrets.yaml", "a: [1\nb: 2\n", 2, None),
        ("application.properties", "a=1\n\nb=\\uZZZZ\n", 3, None),
        ("application.secrets.env", "A=1\nA=2\n", 2, "A"),
        ("application.config.json", '{"a": 1,\n "b": }', 2, None),
    ],
)
def test_malformed_input_names_file_and_line(
    tmp_path: Path, filename: str, text: str, line: int, field: str | None
) -> None:
    repo = tmp_path / "repo"
    (repo / ORDERS).mkdir(parents=True)
    (repo / ORDERS / filename).write_text(text)
    configs = _config(tmp_path, extra_spec="    files: [application.properties, application.config.json]")
    report = run(configs, LocalDirSource(repo), apply=True)
    assert report.errors and report.errors[0]["path"] == f"{ORDERS}/{filename}"
    assert report.errors[0].get("line") == line
    if field:
        assert report.errors[0]["field"] == field
    assert LocalSecretStore(str(tmp_path / "store.db")).names() == []


def test_key_clash_names_both_sources_and_touches_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ORDERS).mkdir(parents=True)
    (repo / ORDERS / "application.secrets.env").write_text("DB=one-value-here\n")
    (repo / ORDERS / "application.secrets.yaml").write_text("DB: two-value-here\n")
    report = run(_config(tmp_path), LocalDirSource(repo), apply=True)
    assert len(report.errors) == 1
    message = report.errors[0]["message"]
    assert f"{ORDERS}/application.secrets.env:DB" in message
    assert f"{ORDERS}/application.secrets.yaml:DB" in message
    assert "two-value-here" not in message and "one-value-here" not in message
    assert LocalSecretStore(str(tmp_path / "store.db")).names() == []


def test_case_insensitive_clash_for_key_vault() -> None:
    from core.naming.assign import find_clashes

    clashes = find_clashes(
        [
            ("azure-key-vault", "orders-db-url", "a.env:db_url"),
            ("azure-key-vault", "Orders-DB-URL", "b.yaml:DB.URL"),
        ]
    )
    assert len(clashes) == 1
    assert "a.env:db_url and b.yaml:DB.URL" in str(clashes[0][2]) and "case" in str(clashes[0][2])
    assert find_clashes([("aws-secrets-manager", "a/B", "x:B"), ("aws-secrets-manager", "a/b", "x:b")]) == []


def test_unknown_config_field_is_an_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("    enabled: true", "    enabled: true\n    enabeld: true"))
    rc, out, err = cli(capsys, "plan", "--config", str(cfg), "--source", str(tmp_path))
    assert rc == 1
    assert "spec.configs.enabeld" in err and "unknown field" in err and f"{cfg}:" in err


def test_unmanaged_entry_is_a_conflict_unless_adopted(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    secrets = LocalSecretStore(str(tmp_path / "store.db"))
    secrets.set_unmanaged("orders/dev/DB_PASSWORD", "hand-made value")
    report = run(configs, LocalDirSource(repo), apply=True)
    conflict = [c for c in report.changes if c.action == "conflict"]
    assert [c.name for c in conflict] == ["orders/dev/DB_PASSWORD"]
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "hand-made value"
    adopt = _config(tmp_path, extra_spec="  sync:\n    adopt: true")
    report = run(adopt, LocalDirSource(repo), apply=True)
    assert [c.action for c in report.changes if c.name == "orders/dev/DB_PASSWORD"] == ["update"]
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "orders db pa55word"


def test_mass_delete_guard(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    run(configs, LocalDirSource(repo), apply=True)
    (repo / ORDERS / "application.properties").write_text("")
    report = run(configs, LocalDirSource(repo), apply=True, prune=True)
    assert any("refusing to delete 3 of 5" in e["message"] for e in report.errors)
    assert LocalConfigStore(str(tmp_path / "store.db")).get_value("orders/dev/server.port") == "8080"
    report = run(configs, LocalDirSource(repo), apply=True, prune=True, allow_mass_delete=True)
    assert sum(c.action == "delete" for c in report.changes) == 3


def test_removed_service_is_pruned_on_full_resync(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    run(configs, LocalDirSource(repo), apply=True)
    import shutil

    shutil.rmtree(repo / "microservices" / "payments")
    report = run(configs, LocalDirSource(repo), apply=True, prune=True, allow_mass_delete=True)
    deleted = sorted(c.name for c in report.changes if c.action == "delete")
    assert deleted == [
        "payments/dev/gateway.api_key",
        "payments/dev/gateway.webhook_secret",
        "payments/dev/payments.currency",
        "payments/dev/payments.retries",
    ]


def test_incremental_run_touches_only_changed_service(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    run(configs, LocalDirSource(repo), apply=True)
    report = run(
        configs, LocalDirSource(repo), apply=True, changed_paths={f"{PAYMENTS}/application.config.yaml"}
    )
    assert {c.name.split("/")[0] for c in report.changes} == {"payments"}
    report = run(configs, LocalDirSource(repo), apply=True, changed_paths={"README.md"})
    assert report.changes == [] and report.errors == []


def test_incremental_prune_of_a_deleted_file(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    run(configs, LocalDirSource(repo), apply=True)
    removed = f"{PAYMENTS}/application.config.yaml"
    (repo / removed).unlink()
    report = run(configs, LocalDirSource(repo), apply=True, prune=True, allow_mass_delete=True,
                 changed_paths={removed})  # fmt: skip
    assert sorted((c.action, c.name) for c in report.changes if c.action != "unchanged") == [
        ("delete", "payments/dev/payments.currency"),
        ("delete", "payments/dev/payments.retries"),
    ]
    assert {c.name.split("/")[0] for c in report.changes} == {"payments"}


def test_properties_blob_when_configs_disabled(repo: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("enabled: true", "enabled: false"))
    report = run(load_config_file(cfg), LocalDirSource(repo), apply=True)
    assert {c.store for c in report.changes} == {"local-secrets"}
    blob = LocalSecretStore(str(tmp_path / "store.db")).get_value("orders/dev/properties")
    assert json.loads(blob) == {
        "server.port": "8080",
        "orders.greeting": "Bonjour à tous",
        "db.url": "jdbc:postgresql://db/orders",
    }
    assert LocalSecretStore(str(tmp_path / "store.db")).get_value("payments/dev/payments.currency") == "EUR"


def test_drift_is_reported_or_corrected(repo: Path, tmp_path: Path) -> None:
    configs = _config(tmp_path)
    run(configs, LocalDirSource(repo), apply=True)
    secrets = LocalSecretStore(str(tmp_path / "store.db"))
    # a hand edit: a new version written outside Git, metadata untouched
    entry_version = secrets.versions("orders/dev/DB_PASSWORD") + 1
    nonce, ct = secrets._seal("orders/dev/DB_PASSWORD", entry_version, "edited by hand!")
    with secrets._lock:
        secrets._db.execute(
            "INSERT INTO versions (namespace,name,version,nonce,ciphertext) VALUES (?,?,?,?,?)",
            ("secrets", "orders/dev/DB_PASSWORD", entry_version, nonce, ct),
        )
        secrets._db.execute(
            "UPDATE entries SET version=? WHERE namespace='secrets' AND name=?",
            (entry_version, "orders/dev/DB_PASSWORD"),
        )
    report = run(configs, LocalDirSource(repo), apply=True, drift=True)
    assert [(c.action, c.name) for c in report.changes if c.action != "unchanged"] == [
        ("drift", "orders/dev/DB_PASSWORD")
    ]
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "edited by hand!"
    fix = _config(tmp_path, extra_spec="  sync:\n    drift: correct")
    report = run(fix, LocalDirSource(repo), apply=True, drift=True)
    assert [c.action for c in report.changes if c.action != "unchanged"] == ["update"]
    assert secrets.get_value("orders/dev/DB_PASSWORD") == "orders db pa55word"


def test_empty_values_and_unencrypted_secret_warning(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ORDERS).mkdir(parents=True)
    (repo / ORDERS / "application.secrets.env").write_text("EMPTY=\nSET=value-123456\n")
    report = run(_config(tmp_path), LocalDirSource(repo), apply=True)
    assert LocalSecretStore(str(tmp_path / "store.db")).get_value("orders/dev/EMPTY") == ""
    assert any("not SOPS-encrypted" in w for w in report.warnings)
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            "    basePath: microservices", "    basePath: microservices\n    requireEncrypted: true"
        )
    )
    report = run(load_config_file(cfg), LocalDirSource(repo), apply=True)
    assert report.errors and "not SOPS-encrypted" in report.errors[0]["message"]
