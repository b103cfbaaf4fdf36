"""Desired state (core/desired.py): naming once, checks, and clash settling by owner."""

from __future__ import annotations

from pathlib import Path

from core.config import parse_config_text
from core.desired import ServiceState, desired_state
from core.discover import ServiceFiles
from core.naming.assign import clashes
from core.report import Report
from core.route import RoutedItem
from core.stores import open_store
from tests.core.conftest import write_config


def _service(config, name: str, *items: tuple[str, str]) -> ServiceState:  # type: ignore[no-untyped-def]
    files = ServiceFiles(config, name, "dev", f"svc/{name}")
    routed = [
        RoutedItem("local-secrets", "secret", k, v, f"svc/{name}/application.secrets.env:{k}")
        for k, v in items
    ]
    return ServiceState(files, routed)


def test_clashes_index_by_store_name_and_carry_the_tag() -> None:
    named = [
        ("azure-key-vault", "a-db-url", "x:db.url", "owner-1"),
        ("azure-key-vault", "a-other", "x:other", "owner-1"),
        ("azure-key-vault", "A-DB-URL", "y:DB_URL", "owner-2"),
        ("gcp-secret-manager", "a-db-url", "z:db.url", "owner-3"),  # another store: no clash
    ]
    [(a, b, err)] = list(clashes(named))
    assert (a, b) == ("owner-1", "owner-2")
    assert "x:db.url and y:DB_URL" in str(err) and "case-insensitive" in str(err)
    assert (err.path, err.field) == ("y", "DB_URL")


def test_a_clash_fails_both_services_and_leaves_the_others(tmp_path: Path) -> None:
    text = (
        write_config(tmp_path).read_text().replace("basePath: microservices", "basePath: s\n    prefix: one")
    )
    [config] = parse_config_text(text)
    services = [
        _service(config, "orders", ("SHARED", "1"), ("ORDERS_ONLY", "2")),
        _service(config, "payments", ("SHARED", "3")),
        _service(config, "users", ("USERS_ONLY", "4")),
    ]
    report = Report(commit=None, applied=False)
    desired = desired_state(config, services, lambda kind: open_store(kind, config), report)
    assert [s.failed for s in services] == [True, True, False]
    assert [(e.name, e.owner) for e in desired["local-secrets"]] == [
        ("one/dev/USERS_ONLY", "example-dev/users/dev")
    ]
    assert (
        len(report.errors) == 1
        and "both map to local-secrets name 'one/dev/SHARED'" in report.errors[0]["message"]
    )


def test_a_bad_name_fails_only_its_service(tmp_path: Path) -> None:
    [config] = parse_config_text(write_config(tmp_path).read_text())
    services = [_service(config, "orders", ("ok", "1")), _service(config, "bad", ("x" * 600, "2"))]
    report = Report(commit=None, applied=False)
    desired = desired_state(config, services, lambda kind: open_store(kind, config), report)
    assert [s.failed for s in services] == [False, True]
    assert [e.name for e in desired["local-secrets"]] == ["orders/dev/ok"]
    assert "512" in report.errors[0]["message"] and report.errors[0]["service"] == "bad"


def test_a_naming_scheme_is_pluggable_per_config_and_per_kind(tmp_path: Path) -> None:
    import dataclasses

    from core.naming import schemes
    from core.naming.assign import render_name

    [config] = parse_config_text(write_config(tmp_path).read_text())
    shouting = schemes.NamingScheme(
        "shouting", default=schemes.template_name, by_kind={"local-secrets": lambda r: (r.key.upper(), None)}
    )
    schemes.register(shouting)
    try:
        loud = dataclasses.replace(config, naming="shouting")
        assert render_name(loud, "local-secrets", "secret", "orders", "orders", "dev", "db.pass") == "DB.PASS"
        assert render_name(loud, "local-configs", "config", "orders", "orders", "dev", "k") == "orders/dev/k"
        assert render_name(config, "local-secrets", "secret", "orders", "orders", "dev", "db.pass") == (
            "orders/dev/db.pass"
        )
    finally:
        del schemes.SCHEMES["shouting"]
