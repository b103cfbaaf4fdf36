"""KeyVaultStore against the fake vault, through the real azure-keyvault-secrets client."""

from __future__ import annotations

import pytest

from core.errors import StoreError
from core.model import ListQuery, StoredEntry
from core.naming import NameContext, rules_for
from core.stores import _azure, open_store
from core.stores.azure_key_vault import KeyVaultHandle, KeyVaultStore
from core.stores.base import ConflictError
from tests.azure.conftest import azure_config, entry
from tests.fakes.azure_key_vault import SCOPE, FakeKeyVault
from tests.support.leakcheck import LeakCheck

KV = "azure-key-vault"
OWNER = "shop-dev/orders/dev"


@pytest.fixture
def store(key_vault: FakeKeyVault, app_config) -> KeyVaultStore:  # type: ignore[no-untyped-def]
    st = open_store(KV, azure_config(key_vault, app_config))
    assert isinstance(st, KeyVaultStore)
    st.polling_interval = 0
    return st


def listing(store: KeyVaultStore, *names: str, owners: set[str] | None = None) -> dict[str, StoredEntry]:
    got = store.list_entries(ListQuery(owners=owners if owners is not None else {OWNER}, names=set(names)))
    return {e.name: e for e in got}


def test_create_tags_content_type_and_listing(key_vault: FakeKeyVault, app_config) -> None:  # type: ignore[no-untyped-def]
    from azure.keyvault.secrets._shared import http_challenge_cache

    _azure.clear_caches()  # a fresh client and no cached challenge: it starts with the probe
    http_challenge_cache.clear()
    store = open_store(KV, azure_config(key_vault, app_config))
    assert isinstance(store, KeyVaultStore)
    store.put(entry(KV, "orders-dev-db-password", "pa55-w0rd-orders"), None)
    assert key_vault.value("orders-dev-db-password") == "pa55-w0rd-orders"
    tags = key_vault.tags("orders-dev-db-password")
    assert tags == {
        "managed-by": "secret-manager-functions",
        "smf-owner": OWNER,
        "smf-source": "orders/application.secrets.env:orders-dev-db-password",
        "smf-fingerprint": "fp-1",
        "smf-repo": "https://example.com/shop.git",  # the token in the URL never lands in a tag
        "smf-commit": "c" * 40,
    }
    assert key_vault.content_type("orders-dev-db-password") == "text/plain"
    # The bearer challenge: one unauthenticated probe, then a token for the vault scope.
    assert key_vault.unauthenticated == 1
    got = listing(store)
    e = got["orders-dev-db-password"]
    assert (e.managed, e.owner, e.fingerprint, e.commit, e.deleted) == (True, OWNER, "fp-1", "c" * 40, False)
    assert e.source == "orders/application.secrets.env:orders-dev-db-password"


def test_challenge_asks_for_the_vault_scope(key_vault: FakeKeyVault, app_config) -> None:  # type: ignore[no-untyped-def]
    from tests.azure import conftest

    cred = conftest.test_credential()
    from azure.keyvault.secrets import SecretClient

    client = SecretClient(key_vault.url, cred, verify_challenge_resource=False,
                          connection_verify=str(key_vault.cert_path), retry_total=0)  # fmt: skip
    KeyVaultStore(client).put(entry(KV, "a-b", "value-123456"), None)
    assert cred.requests and cred.requests[0] == ((SCOPE,), "tenant")


def test_wrong_token_is_refused(key_vault: FakeKeyVault) -> None:
    from azure.keyvault.secrets import SecretClient

    from tests.fakes.azure_key_vault import FakeKeyVaultCredential

    client = SecretClient(key_vault.url, FakeKeyVaultCredential("not-the-token"), verify_challenge_resource=False,
                          connection_verify=str(key_vault.cert_path), retry_total=0)  # fmt: skip
    with pytest.raises(StoreError) as err:
        KeyVaultStore(client).put(entry(KV, "a-b", "value-123456"), None)
    assert "401" in str(err.value) and not err.value.transient
    assert key_vault.secret_names() == []


def test_update_adds_a_version_and_case_insensitive_names(
    store: KeyVaultStore, key_vault: FakeKeyVault
) -> None:
    store.put(entry(KV, "Orders-Dev-Token", "first-value-1"), None)
    # The vault keeps its spelling; a differently cased desired name finds the same secret.
    got = listing(store, "orders-dev-token")
    assert list(got) == ["Orders-Dev-Token"]
    store.put(entry(KV, "orders-dev-token", "second-value-2", fingerprint="fp-2"), got["Orders-Dev-Token"])
    assert key_vault.secret_names() == ["Orders-Dev-Token"]
    assert key_vault.versions("orders-dev-token") == 2
    assert key_vault.value("ORDERS-DEV-TOKEN") == "second-value-2"
    assert listing(store)["Orders-Dev-Token"].fingerprint == "fp-2"


def test_value_limit_is_checked_before_any_call(store: KeyVaultStore, key_vault: FakeKeyVault) -> None:
    big = "x" * (25 * 1024 + 1)
    with pytest.raises(StoreError) as err:
        store.put(entry(KV, "orders-dev-big", big), None)
    assert "25601 bytes" in str(err.value) and "25600" in str(err.value)
    assert key_vault.total_calls() == 0
    store.put(entry(KV, "orders-dev-max", "y" * (25 * 1024)), None)  # exactly 25 KB is fine
    assert key_vault.versions("orders-dev-max") == 1


def test_create_race_with_unmanaged_secret_is_a_conflict(
    store: KeyVaultStore, key_vault: FakeKeyVault
) -> None:
    key_vault.seed("orders-dev-api", "hand-made-value", tags={"team": "ops"})
    with pytest.raises(ConflictError):
        store.put(entry(KV, "ORDERS-dev-api", "from-git-value"), None)
    assert key_vault.value("orders-dev-api") == "hand-made-value"
    assert key_vault.versions("orders-dev-api") == 1
    # Listed by name, it is reported as not ours.
    assert listing(store, "orders-dev-api")["orders-dev-api"].managed is False


@pytest.mark.parametrize("missing_versions", ["404", "empty"])
def test_a_name_without_versions_is_free_whichever_way_the_vault_answers(
    store: KeyVaultStore, key_vault: FakeKeyVault, missing_versions: str
) -> None:
    """Before a create, an empty first page of versions means free: 404 or 200 + ``value: []``."""
    key_vault.missing_versions = missing_versions
    store.put(entry(KV, "orders-dev-new", "first-value-1"), None)
    assert key_vault.value("orders-dev-new") == "first-value-1"
    assert key_vault.calls[("GET", "/secrets/{name}/versions")] == 1
    # A name that has a version is still taken, under either answer for missing names.
    key_vault.seed("orders-dev-api", "hand-made-value")
    with pytest.raises(ConflictError):
        store.put(entry(KV, "orders-dev-api", "from-git-value"), None)
    assert key_vault.value("orders-dev-api") == "hand-made-value"


def test_adopt_takes_over_an_unmanaged_secret(store: KeyVaultStore, key_vault: FakeKeyVault) -> None:
    key_vault.seed("orders-dev-api", "hand-made-value")
    current = listing(store, "orders-dev-api")["orders-dev-api"]
    store.put(entry(KV, "orders-dev-api", "from-git-value"), current)
    assert key_vault.tags("orders-dev-api")["managed-by"] == "secret-manager-functions"
    assert key_vault.value("orders-dev-api") == "from-git-value"


def test_prune_soft_deletes_and_recover_on_return(store: KeyVaultStore, key_vault: FakeKeyVault) -> None:
    store.put(entry(KV, "orders-dev-old", "old-value-123"), None)
    current = listing(store)["orders-dev-old"]
    store.delete(current)
    assert key_vault.secret_names() == [] and key_vault.deleted_names() == ["orders-dev-old"]
    # Not asked for by name: a deleted secret is not listed (and never pruned twice).
    assert listing(store) == {}
    # Back in Git: listed as deleted, then recovered and updated instead of a 409.
    back = listing(store, "orders-dev-old")["orders-dev-old"]
    assert back.deleted and back.managed and back.owner == OWNER
    store.put(entry(KV, "orders-dev-old", "new-value-456", fingerprint="fp-2"), back)
    assert key_vault.deleted_names() == []
    assert key_vault.value("orders-dev-old") == "new-value-456"
    assert key_vault.versions("orders-dev-old") == 2
    assert key_vault.calls[("POST", "/deletedsecrets/{name}/recover")] == 1


def test_recovered_unchanged_value_gets_no_new_version(store: KeyVaultStore, key_vault: FakeKeyVault) -> None:
    store.put(entry(KV, "orders-dev-same", "same-value-123"), None)
    store.delete(listing(store)["orders-dev-same"])
    back = listing(store, "orders-dev-same")["orders-dev-same"]
    e = entry(KV, "orders-dev-same", "same-value-123")
    e.commit = "d" * 40
    store.put(e, back)
    assert key_vault.versions("orders-dev-same") == 1
    assert key_vault.tags("orders-dev-same")["smf-commit"] == "d" * 40


def test_soft_deleted_foreign_secret_blocks_create_with_a_conflict(
    store: KeyVaultStore, key_vault: FakeKeyVault
) -> None:
    key_vault.seed("orders-dev-x", "someone-else")
    key_vault.soft_delete("orders-dev-x")
    with pytest.raises(ConflictError) as err:
        store.put(entry(KV, "orders-dev-x", "from-git-value"), None)
    assert "soft-deleted" in str(err.value)


def test_purge_on_delete(key_vault: FakeKeyVault, app_config) -> None:  # type: ignore[no-untyped-def]
    st = open_store(KV, azure_config(key_vault, app_config, azure_extra="      purgeOnDelete: true\n"))
    assert isinstance(st, KeyVaultStore) and st.purge_on_delete
    st.polling_interval = 0
    st.put(entry(KV, "orders-dev-gone", "gone-value-1"), None)
    st.delete(listing(st)["orders-dev-gone"])
    assert key_vault.secret_names() == [] and key_vault.deleted_names() == []
    st.put(entry(KV, "orders-dev-gone", "again-value-2"), None)  # the name is free again
    assert key_vault.versions("orders-dev-gone") == 1


def test_never_deletes_unmanaged(store: KeyVaultStore, key_vault: FakeKeyVault) -> None:
    key_vault.seed("theirs", "their-value")
    with pytest.raises(StoreError):
        store.delete(StoredEntry(name="theirs", managed=False, handle=KeyVaultHandle("theirs", None, {})))
    assert key_vault.secret_names() == ["theirs"]


def test_listing_pages_and_ownership_filter(store: KeyVaultStore, key_vault: FakeKeyVault) -> None:
    for i in range(60):
        store.put(entry(KV, f"orders-dev-k{i:02d}", f"value-{i:04d}"), None)
    store.put(entry(KV, "billing-dev-k", "value-billing", owner="shop-dev/billing/dev"), None)
    key_vault.seed("unmanaged", "x-value-unmanaged")
    key_vault.calls.clear()
    got = listing(store)
    assert len(got) == 60 and "billing-dev-k" not in got and "unmanaged" not in got
    assert key_vault.calls[("GET", "/secrets")] == 3  # 62 secrets, 25 per page
    assert key_vault.calls[("GET", "/deletedsecrets")] == 0  # nothing asked for is missing
    prefixed = store.list_entries(ListQuery(owners=set(), names=set(), owner_prefixes={"shop-dev/"}))
    assert len(prefixed) == 61


@pytest.mark.parametrize(("status", "transient"), [(429, True), (503, True), (500, True), (403, False)])
def test_errors_map_to_store_errors(store: KeyVaultStore, key_vault: FakeKeyVault, status: int,
                                    transient: bool) -> None:  # fmt: skip
    store.put(entry(KV, "orders-dev-warm", "warm-up-value"), None)  # challenge done
    key_vault.fail_next(status)
    with pytest.raises(StoreError) as err:
        store.put(entry(KV, "orders-dev-err", "never-shown-value"), None)
    assert err.value.transient is transient
    assert str(status) in str(err.value)
    LeakCheck(["never-shown-value"]).scan(str(err.value), repr(err.value.to_dict()))


def test_read_values_and_read_secret(store: KeyVaultStore) -> None:
    store.put(entry(KV, "orders-dev-a", "value-a-123"), None)
    got = listing(store)
    assert store.read_values(list(got.values())) == {"orders-dev-a": "value-a-123"}
    assert store.read_secret("orders-dev-a") == "value-a-123"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("DB_PASSWORD", "orders-dev-DB-PASSWORD"),
        ("db.url", "orders-dev-db-url"),
        ("spring.datasource.password", "orders-dev-spring-datasource-password"),
        ("a__b..c", "orders-dev-a-b-c"),
        ("key with spaces/and:colons", "orders-dev-key-with-spaces-and-colons"),
    ],
)
def test_documented_name_mapping(key: str, name: str) -> None:
    rules = rules_for(KV)
    got = rules.render(None, NameContext(service="orders", environment="dev", key=key, kind="secret"),
                       field_name="spec.secrets.nameTemplate")  # fmt: skip
    assert got == name and rules.check_name(got) is None


def test_name_rules() -> None:
    rules = rules_for(KV)
    assert rules.check_name("9lives") is not None  # must start with a letter
    assert rules.check_name("a" * 128) is not None
    assert rules.check_name("a" * 127) is None
    assert rules.check_name("under_score") is not None
    assert rules.clash_key("DB-URL") == rules.clash_key("db-url")
