"""GCP Secret Manager store against drongo (the real client library over REST)."""

from __future__ import annotations

import pytest

from core.errors import StoreError
from core.model import DesiredEntry, ListQuery
from core.stores import _gcp
from core.stores.base import ConflictError
from core.stores.gcp_secret_manager import SecretManagerStore
from tests.gcp.conftest import PROJECT

OWNER = "cfg/orders/dev"


def entry(name: str, value: str, fp: str = "fp1", owner: str = OWNER, key: str = "K") -> DesiredEntry:
    return DesiredEntry(
        store="gcp-secret-manager",
        name=name,
        value=value,
        kind="secret",
        source=f"orders/deployment-configuration/profiles/dev/application.secrets.env:{key}",
        owner=owner,
        fingerprint=fp,
        repo="git://example/repo.git",
        commit="c" * 40,
        options={"service": "orders", "environment": "dev", "key": key},
    )


@pytest.fixture
def store(gcp_env) -> SecretManagerStore:  # type: ignore[no-untyped-def]
    st = SecretManagerStore(PROJECT, keep_versions=2, hygiene="disable")
    yield st
    st.close()


def listing(st: SecretManagerStore, names=(), owners=(OWNER,)):  # type: ignore[no-untyped-def]
    return {e.name: e for e in st.list_entries(ListQuery(owners=set(owners), names=set(names)))}


def test_create_list_roundtrip_metadata(store: SecretManagerStore) -> None:
    store.put(entry("orders-dev-DB_PASSWORD", "s3cret-pw"), None)
    got = listing(store)
    e = got["orders-dev-DB_PASSWORD"]
    assert e.managed and e.owner == OWNER and e.fingerprint == "fp1"
    assert e.commit == "c" * 40
    assert e.source.endswith("application.secrets.env:K")
    assert e.deleted is False
    assert store.read_values([e]) == {"orders-dev-DB_PASSWORD": "s3cret-pw"}
    labels = e.handle["labels"]
    assert labels["managed-by"] == "secret-manager-functions"
    assert labels[_gcp.LABEL_ENV] == "dev" and labels[_gcp.LABEL_SERVICE] == "orders"
    assert all(len(k) <= 63 and len(v) <= 63 for k, v in labels.items())


def test_update_adds_version_and_hygiene_keeps_setting(store: SecretManagerStore) -> None:
    name = "orders-dev-TOKEN"
    store.put(entry(name, "v0", fp="f0"), None)
    for i in range(1, 6):
        current = listing(store)[name]
        store.put(entry(name, f"v{i}", fp=f"f{i}"), current)
    states = store.version_states(name)
    assert len(states) == 6
    enabled = sorted(n for n, s in states.items() if s == "ENABLED")
    assert enabled == [5, 6]  # keepVersions=2: the newest two
    assert all(s == "DISABLED" for n, s in states.items() if n < 5)
    assert store.read_values([listing(store)[name]]) == {name: "v5"}
    assert listing(store)[name].fingerprint == "f5"


def test_hygiene_destroy(gcp_env) -> None:  # type: ignore[no-untyped-def]
    st = SecretManagerStore(PROJECT, keep_versions=1, hygiene="destroy")
    name = "orders-dev-ROTATED"
    st.put(entry(name, "a", fp="a"), None)
    for v in ("b", "c", "d"):
        st.put(entry(name, v, fp=v), listing(st)[name])
    states = st.version_states(name)
    assert [s for _, s in sorted(states.items())] == ["DESTROYED", "DESTROYED", "DESTROYED", "ENABLED"]


def test_hygiene_none_keeps_all_enabled(gcp_env) -> None:  # type: ignore[no-untyped-def]
    st = SecretManagerStore(PROJECT, keep_versions=1, hygiene="none")
    st.put(entry("x", "a", fp="a"), None)
    st.put(entry("x", "b", fp="b"), listing(st)["x"])
    assert set(st.version_states("x").values()) == {"ENABLED"}


def test_unmanaged_is_listed_by_name_and_conflicts_on_create(store: SecretManagerStore) -> None:
    store.client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id="handmade",
        secret={"replication": {"automatic": {}}, "labels": {"team": "x"}},
    )
    got = listing(store, names={"handmade"})
    assert not got["handmade"].managed and got["handmade"].owner is None
    assert "handmade" not in listing(store)  # not asked by name, not ours: not returned
    with pytest.raises(ConflictError):
        store.put(entry("handmade", "v"), None)


def test_adopt_takes_over_labels_keeps_others_and_skips_equal_value(store: SecretManagerStore) -> None:
    c = store.client
    s = c.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id="legacy",
        secret={"replication": {"automatic": {}}, "labels": {"team": "payments"}},
    )
    c.add_secret_version(parent=s.name, payload={"data": b"same"})
    current = listing(store, names={"legacy"})["legacy"]
    store.put(entry("legacy", "same", fp="fx"), current)
    now = listing(store)["legacy"]
    assert now.managed and now.fingerprint == "fx"
    assert now.handle["labels"]["team"] == "payments"
    assert store.version_states("legacy") == {1: "ENABLED"}  # equal value: no new version


def test_other_owner_not_listed_and_delete(store: SecretManagerStore) -> None:
    store.put(entry("a", "1"), None)
    store.put(entry("b", "2", owner="cfg/billing/dev"), None)
    assert set(listing(store)) == {"a"}
    got = store.list_entries(ListQuery(owners=set(), names=set(), owner_prefixes={"cfg/"}))
    assert {e.name for e in got} == {"a", "b"}
    store.delete(listing(store)["a"])
    assert listing(store) == {}
    store.delete(got[0])  # deleting twice is fine


def test_read_secret(store: SecretManagerStore) -> None:
    store.put(entry("age-key", "AGE-SECRET-KEY-1XYZ"), None)
    assert store.read_secret("age-key") == "AGE-SECRET-KEY-1XYZ"
    with pytest.raises(StoreError) as err:
        store.read_secret("missing")
    assert "NotFound" in str(err.value)


def test_error_is_mapped_and_never_carries_the_value(gcp_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GCP_SECRET_MANAGER_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    st = SecretManagerStore(PROJECT)
    with pytest.raises(StoreError) as err:
        st.put(entry("z", "very-secret-value"), None)
    assert err.value.transient
    assert "very-secret-value" not in str(err.value)


def test_regional_and_replication_shapes() -> None:
    st = SecretManagerStore("p", location="europe-west1")
    assert st.parent == "projects/p/locations/europe-west1" and st._replication() is None
    st = SecretManagerStore("p", replication_locations=["us-east1", "us-west1"])
    assert st._replication() == {
        "user_managed": {"replicas": [{"location": "us-east1"}, {"location": "us-west1"}]}
    }
    assert SecretManagerStore("p")._replication() == {"automatic": {}}


def test_label_codec_roundtrip() -> None:
    meta = {
        "managed-by": "secret-manager-functions",
        "smf-owner": "Cfg/Svc/Env",
        "smf-source": "a/b/application.secrets.yaml:db.password" * 3,
        "smf-commit": "ab" * 20,
    }
    labels = _gcp.encode_labels(meta)
    assert all(len(v) <= 63 and v == v.lower() for v in labels.values())
    assert _gcp.decode_labels(labels) == meta


def test_endpoints_regional_global_and_emulator(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(_gcp.SM_ENDPOINT_ENV, raising=False)
    monkeypatch.delenv(_gcp.PM_ENDPOINT_ENV, raising=False)
    assert _gcp._client_kwargs(_gcp.SM_ENDPOINT_ENV, "secretmanager", None) == {}  # ADC, global
    regional = _gcp._client_kwargs(_gcp.SM_ENDPOINT_ENV, "secretmanager", "europe-west1")
    assert regional["client_options"].api_endpoint == "secretmanager.europe-west1.rep.googleapis.com"
    pm = _gcp._client_kwargs(_gcp.PM_ENDPOINT_ENV, "parametermanager", "us-central1")
    assert pm["client_options"].api_endpoint == "parametermanager.us-central1.rep.googleapis.com"
    monkeypatch.setenv(_gcp.PM_ENDPOINT_ENV, "http://127.0.0.1:9091")
    emu = _gcp._client_kwargs(_gcp.PM_ENDPOINT_ENV, "parametermanager", "us-central1")
    assert emu["transport"] == "rest" and emu["client_options"].api_endpoint == "http://127.0.0.1:9091"
    assert type(emu["credentials"]).__name__ == "AnonymousCredentials"
