"""AppConfigurationStore against the fake App Configuration, through the real client."""

from __future__ import annotations

import json

import pytest

from core.errors import NamingError, StoreError
from core.model import ListQuery, StoredEntry
from core.naming.assign import render_name
from core.stores import open_store
from core.stores.azure_app_configuration import (
    KEY_VAULT_REF_CONTENT_TYPE,
    AppConfigHandle,
    AppConfigurationStore,
)
from core.stores.base import ConflictError
from tests.azure.conftest import azure_config, entry
from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault
from tests.support.leakcheck import LeakCheck

AC = "azure-app-configuration"
KV = "azure-key-vault"
OWNER = "shop-dev/orders/dev"


@pytest.fixture
def store(key_vault: FakeKeyVault, app_config: FakeAppConfiguration) -> AppConfigurationStore:
    st = open_store(AC, azure_config(key_vault, app_config))
    assert isinstance(st, AppConfigurationStore)
    return st


def listing(
    store: AppConfigurationStore, *names: str, owners: set[str] | None = None
) -> dict[str, StoredEntry]:
    got = store.list_entries(ListQuery(owners=owners if owners is not None else {OWNER}, names=set(names)))
    return {e.name: e for e in got}


def cfg(name: str, value: str, **kw):  # type: ignore[no-untyped-def]
    return entry(AC, name, value, kind="config", source=f"orders/application.properties:{name}", **kw)


def test_create_with_label_tags_and_listing(
    store: AppConfigurationStore, app_config: FakeAppConfiguration
) -> None:
    assert store.label == "dev"
    store.put(cfg("orders:db.url", "jdbc:postgresql://db/orders"), None)
    items = app_config.items()
    kv = items[("orders:db.url", "dev")]
    assert kv["value"] == "jdbc:postgresql://db/orders"
    assert kv["tags"]["managed-by"] == "secret-manager-functions"
    assert kv["tags"]["smf-owner"] == OWNER
    assert kv["tags"]["smf-repo"] == "https://example.com/shop.git"
    got = listing(store)["orders:db.url"]
    assert (got.managed, got.owner, got.fingerprint, got.commit) == (True, OWNER, "fp-1", "c" * 40)
    assert app_config.rejected == []  # every request was HMAC-signed correctly


def test_listing_is_scoped_to_our_label_and_selects_no_values(
    store: AppConfigurationStore, app_config: FakeAppConfiguration
) -> None:
    store.put(cfg("orders:a", "va"), None)
    app_config.seed("orders:a", "prod-value", "prod", tags={"managed-by": "secret-manager-functions",
                                                            "smf-owner": OWNER})  # fmt: skip
    app_config.seed("other-app:x", "theirs", "dev")
    got = listing(store, "other-app:x")
    assert set(got) == {"orders:a", "other-app:x"}
    assert got["orders:a"].handle.label == "dev"
    assert got["other-app:x"].managed is False


def test_update_is_conditional_on_the_listed_etag(
    store: AppConfigurationStore, app_config: FakeAppConfiguration
) -> None:
    store.put(cfg("orders:flag", "on"), None)
    current = listing(store)["orders:flag"]
    # Someone edits the key between our listing and our write: we must not clobber it.
    app_config.seed(
        "orders:flag", "edited-by-hand", "dev", tags=app_config.items()[("orders:flag", "dev")]["tags"]
    )
    with pytest.raises(StoreError) as err:
        store.put(cfg("orders:flag", "off", fingerprint="fp-2"), current)
    assert "ETag" in str(err.value) and not err.value.transient
    assert app_config.items()[("orders:flag", "dev")]["value"] == "edited-by-hand"
    # With a fresh listing the update goes through.
    store.put(cfg("orders:flag", "off", fingerprint="fp-2"), listing(store)["orders:flag"])
    assert app_config.items()[("orders:flag", "dev")]["value"] == "off"


def test_create_race_is_a_conflict(store: AppConfigurationStore, app_config: FakeAppConfiguration) -> None:
    app_config.seed("orders:new", "made-by-hand", "dev")
    with pytest.raises(ConflictError):
        store.put(cfg("orders:new", "from-git"), None)
    assert app_config.items()[("orders:new", "dev")]["value"] == "made-by-hand"


def test_delete_is_conditional_and_scoped(
    store: AppConfigurationStore, app_config: FakeAppConfiguration
) -> None:
    store.put(cfg("orders:old", "v1"), None)
    current = listing(store)["orders:old"]
    app_config.seed("orders:old", "changed", "dev", tags=app_config.items()[("orders:old", "dev")]["tags"])
    with pytest.raises(StoreError):
        store.delete(current)
    assert ("orders:old", "dev") in app_config.items()
    store.delete(listing(store)["orders:old"])
    assert ("orders:old", "dev") not in app_config.items()
    # Another label or an unmanaged key is never deleted, even if asked.
    app_config.seed("orders:p", "prod", "prod")
    for bad in (
        StoredEntry("orders:p", managed=True, owner=OWNER, handle=AppConfigHandle("orders:p", "prod", "x")),
        StoredEntry("orders:p", managed=False, handle=AppConfigHandle("orders:p", "dev", "x")),
    ):
        with pytest.raises(StoreError):
            store.delete(bad)
    assert ("orders:p", "prod") in app_config.items()


def test_locked_key_value(store: AppConfigurationStore, app_config: FakeAppConfiguration) -> None:
    store.put(cfg("orders:locked", "v1"), None)
    tags = app_config.items()[("orders:locked", "dev")]["tags"]
    app_config.seed("orders:locked", "v1", "dev", tags=tags, locked=True)
    with pytest.raises(StoreError) as err:
        store.put(cfg("orders:locked", "v2", fingerprint="fp-2"), listing(store)["orders:locked"])
    assert "locked" in str(err.value)


def test_size_limit(store: AppConfigurationStore, app_config: FakeAppConfiguration) -> None:
    e = cfg("orders:big", "x" * 9990)
    with pytest.raises(NamingError) as err:
        store.prepare([e], {AC: [e]})
    assert "10000" in str(err.value) and "orders/application.properties" in str(err.value)
    # Fits without tags, not with them: put refuses before calling the service.
    e2 = cfg("orders:big", "x" * 9900)
    store.prepare([e2], {AC: [e2]})
    with pytest.raises(StoreError):
        store.put(e2, None)
    assert app_config.total_calls() == 0


def test_key_vault_references(key_vault: FakeKeyVault, app_config: FakeAppConfiguration) -> None:
    st = open_store(
        AC, azure_config(key_vault, app_config, app_config_extra="        keyVaultReferences: true\n")
    )
    assert isinstance(st, AppConfigurationStore)
    secret = entry(KV, "orders-dev-DB-PASSWORD", "pa55word-value", key="DB_PASSWORD")
    conf = cfg("orders:db.url", "jdbc:x", key="db.url")
    out = st.prepare([conf], {KV: [secret], AC: [conf]})
    assert [e.name for e in out] == ["orders:db.url", "orders:DB_PASSWORD"]
    ref = out[1]
    assert ref.content_type == KEY_VAULT_REF_CONTENT_TYPE
    assert json.loads(ref.value) == {"uri": f"{key_vault.url}/secrets/orders-dev-DB-PASSWORD"}
    assert ref.owner == secret.owner and ref.source == secret.source
    LeakCheck(["pa55word-value"]).scan(ref.value, repr(ref))
    ref.fingerprint = "fp-r"
    st.put(ref, None)
    kv = app_config.items()[("orders:DB_PASSWORD", "dev")]
    assert kv["content_type"] == KEY_VAULT_REF_CONTENT_TYPE


def test_separator_and_label_options(key_vault: FakeKeyVault, app_config: FakeAppConfiguration) -> None:
    st = open_store(AC, azure_config(
        key_vault, app_config, app_config_extra="        separator: /\n        label: shop-{environment}\n"))  # fmt: skip
    assert isinstance(st, AppConfigurationStore)
    config = azure_config(key_vault, app_config, app_config_extra="        separator: /\n")
    # the separator is a naming rule: the name planned is the name written, prepare keeps it
    name = render_name(config, AC, "config", "orders", "orders", "dev", "db.url")
    e = cfg(name, "v", key="db.url")
    (out,) = st.prepare([e], {AC: [e]})
    assert out.name == "orders/db.url" and st.label == "shop-dev"
    config.configs.name_template = "{prefix}.{key}"  # an explicit template wins over the separator
    assert render_name(config, AC, "config", "orders", "orders", "dev", "db.url") == "orders.db.url"
    out.fingerprint = "fp"
    st.put(out, None)
    assert ("orders/db.url", "shop-dev") in app_config.items()
    st_nolabel = open_store(AC, azure_config(key_vault, app_config, app_config_extra="        label: ''\n"))
    assert isinstance(st_nolabel, AppConfigurationStore) and st_nolabel.label is None
    st_nolabel.put(cfg("orders:x", "v"), None)
    assert ("orders:x", None) in app_config.items()
    assert set(listing(st_nolabel)) == {"orders:x"}


def test_listing_pages(store: AppConfigurationStore, app_config: FakeAppConfiguration) -> None:
    for i in range(230):
        app_config.seed(f"orders:k{i:03d}", "v", "dev", tags={"managed-by": "secret-manager-functions",
                                                               "smf-owner": OWNER})  # fmt: skip
    app_config.calls.clear()
    assert len(listing(store)) == 230
    assert app_config.calls[("GET", "/kv")] == 3


def test_bad_signature_is_refused(key_vault: FakeKeyVault, app_config: FakeAppConfiguration,
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    wrong = app_config.connection_string.replace(app_config.secret, "c2VjcmV0LXdyb25n")
    monkeypatch.setenv("AZURE_APPCONFIG_CONNECTION_STRING", wrong)
    st = open_store(AC, azure_config(key_vault, app_config))
    with pytest.raises(StoreError) as err:
        st.put(cfg("orders:a", "value-never-shown"), None)
    assert "401" in str(err.value) and not err.value.transient
    assert app_config.rejected == ["Invalid Signature"]
    assert app_config.items() == {}
    LeakCheck(["value-never-shown"]).scan(str(err.value))


@pytest.mark.parametrize(("status", "transient"), [(429, True), (503, True), (400, False)])
def test_errors_map_to_store_errors(store: AppConfigurationStore, app_config: FakeAppConfiguration,
                                    status: int, transient: bool) -> None:  # fmt: skip
    app_config.fail_next(status)
    with pytest.raises(StoreError) as err:
        store.list_entries(ListQuery(owners={OWNER}, names=set()))
    assert err.value.transient is transient
