"""Deletion ordering on the Azure fakes (issue #10 item 3): v1 → v2 (prune) → late v1 = v2.

Key Vault soft delete records the deleting commit in the deleted secret's tags; with
purgeOnDelete, and in App Configuration (which deletes for good), a tombstone does.
"""

from __future__ import annotations

from typing import Any

from core.stores import open_store
from core.stores.azure_app_configuration import AppConfigurationStore
from core.stores.azure_key_vault import KeyVaultStore
from tests.azure.conftest import azure_config
from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault
from tests.support.ordering import HISTORY, Scenario, run_late_v1, run_readd

C1, C2, C3 = HISTORY
A, B = "orders-dev-A", "orders-dev-B"


def _kv(key_vault: FakeKeyVault, app_config: Any, extra: str = "") -> KeyVaultStore:
    st = open_store("azure-key-vault", azure_config(key_vault, app_config, azure_extra=extra))
    assert isinstance(st, KeyVaultStore)
    st.polling_interval = 0
    return st


def test_key_vault_soft_deleted_secret_is_not_recovered_by_an_older_commit(
    key_vault: FakeKeyVault, app_config: Any
) -> None:
    scn = Scenario(_kv(key_vault, app_config), {A: "", B: ""})
    run_late_v1(scn, A, B)
    # Before: the late v1 recovered B. Its soft-deleted tags now name the deleting commit.
    assert key_vault.secret_names() == [A] and key_vault.deleted_names() == [B]
    assert key_vault.value(A) == "a-two"
    assert key_vault.calls[("POST", "/deletedsecrets/{name}/recover")] == 0
    run_readd(scn, A, B)  # a descendant recovers it
    assert key_vault.secret_names() == [A, B] and key_vault.value(B) == "b-three"
    assert key_vault.calls[("POST", "/deletedsecrets/{name}/recover")] == 1


def test_key_vault_purge_leaves_a_tombstone_that_orders_it(key_vault: FakeKeyVault, app_config: Any) -> None:
    scn = Scenario(_kv(key_vault, app_config, "      purgeOnDelete: true\n"), {A: "", B: ""})
    run_late_v1(scn, A, B)
    names = key_vault.secret_names()
    (tomb,) = [n for n in names if n.startswith("smf-tombstone-")]
    assert sorted(names) == sorted([A, tomb]) and key_vault.deleted_names() == []
    assert key_vault.value(tomb) == "deleted"  # a placeholder, never the entry's value
    assert key_vault.tags(tomb)["smf-commit"] == C2 and key_vault.tags(tomb)["smf-tombstone"] == B
    run_readd(scn, A, B)
    assert key_vault.secret_names() == [A, B] and key_vault.deleted_names() == []  # tombstone purged


def test_app_configuration_delete_leaves_a_tombstone_under_its_own_label(
    key_vault: FakeKeyVault, app_config: FakeAppConfiguration
) -> None:
    st = open_store("azure-app-configuration", azure_config(key_vault, app_config))
    assert isinstance(st, AppConfigurationStore)
    a, b = "orders:A", "orders:B"
    scn = Scenario(st, {a: "", b: ""}, kind="config")
    run_late_v1(scn, a, b)
    items = app_config.items()
    # Before: the late v1 re-created orders:B under the "dev" label.
    assert sorted(items) == [(a, "dev"), (b, "smf-deleted:dev")]
    tomb = items[(b, "smf-deleted:dev")]
    assert tomb["value"] == "" and tomb["tags"]["smf-commit"] == C2
    assert items[(a, "dev")]["value"] == "a-two"
    run_readd(scn, a, b)
    items = app_config.items()
    assert sorted(items) == [(a, "dev"), (b, "dev")] and items[(b, "dev")]["value"] == "b-three"
