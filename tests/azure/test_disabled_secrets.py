"""A commented-out `#KEY=value` secret (the controller's file semantics) in Key Vault: written
as a version with ``attributes.enabled: false``, as the controller's ``disable_secret`` left it
(``provider/azure/key_vault/operations.rs:192-247``, PATCH ``enabled: false``); enabling it again
writes an enabled version."""

from __future__ import annotations

from core.stores import open_store
from tests.azure.conftest import azure_config, entry
from tests.fakes.azure_key_vault import FakeKeyVault

KV = "azure-key-vault"


def test_disabled_entry_is_written_disabled_and_comes_back_enabled(
    key_vault: FakeKeyVault, app_config
) -> None:  # type: ignore[no-untyped-def]
    st = open_store(KV, azure_config(key_vault, app_config))
    off = entry(KV, "orders-DB-PASSWORD", "pw-1", fingerprint="fp-off", disabled=True)
    st.put(off, None)
    [stored] = st.list_entries(_query(off))
    assert [v.enabled for v in key_vault._live["orders-db-password"].versions] == [False]

    st.put(entry(KV, "orders-DB-PASSWORD", "pw-1", fingerprint="fp-on"), stored)
    assert [v.enabled for v in key_vault._live["orders-db-password"].versions] == [False, True]
    assert key_vault.value("orders-DB-PASSWORD") == "pw-1"


def _query(e):  # type: ignore[no-untyped-def]
    from core.model import ListQuery

    return ListQuery(owners={e.owner}, names={e.name})
