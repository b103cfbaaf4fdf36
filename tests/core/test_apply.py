"""Apply: retries transient store errors, and a failed write keeps its service's entries.

The flaky store is the real local store with a failure injected at the store boundary (as a
throttled cloud API would fail), so plan/apply run unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import core.apply
from core.config import load_config_file
from core.errors import StoreError
from core.source import LocalDirSource
from core.stores.local import LocalConfigStore, LocalSecretStore
from core.sync import run
from tests.core.conftest import SVC, write_config

ORDERS = SVC.format(service="orders")


class FlakySecrets(LocalSecretStore):
    """Throttles the first `fail` puts, or fails puts of `broken` names for good."""

    fail = 0
    broken: set[str] = set()
    attempts = 0

    def put(self, entry, current):  # type: ignore[no-untyped-def]
        type(self).attempts += 1
        if entry.name in self.broken:
            raise StoreError("AccessDenied on this entry")
        if type(self).fail > 0:
            type(self).fail -= 1
            raise StoreError("ThrottlingException: rate exceeded", transient=True)
        super().put(entry, current)


def factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = str(tmp_path / "store.db")

    def make(kind: str, config):  # type: ignore[no-untyped-def]
        return FlakySecrets(db) if kind == "local-secrets" else LocalConfigStore(db)

    return make


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.apply, "BACKOFF_BASE", 0.0)
    FlakySecrets.fail, FlakySecrets.broken, FlakySecrets.attempts = 0, set(), 0


def test_transient_errors_are_retried_until_they_pass(repo: Path, tmp_path: Path) -> None:
    configs = load_config_file(write_config(tmp_path))
    FlakySecrets.fail = core.apply.MAX_ATTEMPTS - 1  # however they fall, no entry runs out of tries
    report = run(configs, LocalDirSource(repo), apply=True, store_factory=factory(tmp_path))
    assert report.errors == []
    assert FlakySecrets.attempts == 4 + core.apply.MAX_ATTEMPTS - 1  # each written once + throttled tries
    assert len(LocalSecretStore(str(tmp_path / "store.db")).names()) == 4


def test_failed_write_keeps_the_service_and_others_proceed(repo: Path, tmp_path: Path) -> None:
    configs = load_config_file(write_config(tmp_path))
    run(configs, LocalDirSource(repo), apply=True)
    env = repo / ORDERS / "application.secrets.env"
    env.write_text('DB_PASSWORD="new orders password"\n')  # API_TOKEN removed → delete with prune
    (repo / SVC.format(service="payments") / "application.secrets.yaml").write_text(
        "gateway:\n  api_key: payments-gateway-key-2\n  webhook_secret: payments-hook-secret-1\n"
    )
    FlakySecrets.broken = {"orders/dev/DB_PASSWORD"}
    report = run(configs, LocalDirSource(repo), apply=True, prune=True, store_factory=factory(tmp_path))
    assert [e["name"] for e in report.errors] == ["orders/dev/DB_PASSWORD"]
    assert "AccessDenied" in report.errors[0]["message"]
    skipped = [c for c in report.changes if c.name == "orders/dev/API_TOKEN"]
    assert skipped[0].action == "skipped" and "write for this service failed" in skipped[0].reason
    store = LocalSecretStore(str(tmp_path / "store.db"))
    assert store.get_value("orders/dev/API_TOKEN") == "tok-orders-123456"
    assert store.get_value("payments/dev/gateway.api_key") == "payments-gateway-key-2"


def test_permanent_throttling_is_reported_not_raised(repo: Path, tmp_path: Path) -> None:
    configs = load_config_file(write_config(tmp_path))
    FlakySecrets.fail = 10_000
    report = run(configs, LocalDirSource(repo), apply=True, store_factory=factory(tmp_path))
    assert len(report.errors) == 4 and all(e["store"] == "local-secrets" for e in report.errors)
    assert FlakySecrets.attempts == 4 * core.apply.MAX_ATTEMPTS
    assert len(LocalConfigStore(str(tmp_path / "store.db")).names()) == 5
