"""A commented-out `#KEY=value` secret (the controller's file semantics) in GCP Secret Manager.

The controller disabled such a secret after writing its value
(``reconciler/processing/secrets.rs:159-224``). Here: the value is written, then every enabled
version is disabled, so `latest` no longer resolves; enabling it again adds an enabled version.
"""

from __future__ import annotations

from core.stores.gcp_secret_manager import SecretManagerStore
from tests.gcp.conftest import PROJECT
from tests.gcp.test_secret_manager_store import entry, listing


def test_disabled_entry_has_no_enabled_version_and_comes_back_enabled(gcp_env) -> None:  # type: ignore[no-untyped-def]
    st = SecretManagerStore(PROJECT, keep_versions=3, hygiene="disable")
    off = entry("orders-DB_PASSWORD", "pw-1", fp="fp-off")
    off.options["disabled"] = True
    st.put(off, None)
    assert st.version_states("orders-DB_PASSWORD") == {1: "DISABLED"}
    assert st.read_values([listing(st)["orders-DB_PASSWORD"]]) == {}  # latest does not resolve

    back = entry("orders-DB_PASSWORD", "pw-1", fp="fp-on")
    st.put(back, listing(st)["orders-DB_PASSWORD"])
    assert st.version_states("orders-DB_PASSWORD") == {1: "DISABLED", 2: "ENABLED"}
    assert st.read_values([listing(st)["orders-DB_PASSWORD"]]) == {"orders-DB_PASSWORD": "pw-1"}

    again = entry("orders-DB_PASSWORD", "pw-2", fp="fp-off-2")
    again.options["disabled"] = True
    st.put(again, listing(st)["orders-DB_PASSWORD"])
    assert set(st.version_states("orders-DB_PASSWORD").values()) == {"DISABLED"}
    st.close()
